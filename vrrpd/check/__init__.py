"""keepalived's LVS health checkers on asyncio (man keepalived.conf "CHECKER_TYPE").

`CheckerSet` (checkerset.py) runs every checker of a configuration's virtual servers as its own
task and reports real-server changes through one callback; `probes.py`/`http.py`/`icmp.py`/
`misc.py` are the single attempts (each bounded by its timeout, none blocking the loop);
`state.py` is the pure retry/up/down bookkeeping; `notify.py` the notify scripts and FIFO lines.
"""

from vrrpd.check.checkerset import CheckerSet, RsChange
from vrrpd.check.notify import LvsNotifier, rs_fifo_line, vs_fifo_line

__all__ = ["CheckerSet", "LvsNotifier", "RsChange", "rs_fifo_line", "vs_fifo_line"]
