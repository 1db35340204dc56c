"""keepalived's LVS health checkers on asyncio (man keepalived.conf "CHECKER_TYPE").

`CheckerSet` (checkerset.py) runs every checker of a configuration's virtual servers as its own
task and reports real-server changes through one callback; `probes.py`/`http.py`/`icmp.py`/
`udp.py` are the single attempts (each bounded by its timeout, none blocking the loop), `tls.py`
SSL_GET's contexts from the `SSL` block; `state.py` is the pure retry/up/down bookkeeping (and
FILE_CHECK's verdict on a track file's value); `notify.py` the notify scripts and FIFO lines.
"""

from vrrpd.check.checkerset import CheckerSet, RsChange
from vrrpd.check.notify import LvsNotifier, rs_fifo_line, vs_fifo_line

__all__ = ["CheckerSet", "LvsNotifier", "RsChange", "rs_fifo_line", "vs_fifo_line"]
