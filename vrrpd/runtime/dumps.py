"""keepalived's signal dumps: SIGUSR2 writes the stats file in `vrrp_print.c`'s layout.

The layout is copied from what Debian's keepalived 2.2.7 writes (checked in a namespace), so
scripts and exporters that parse /tmp/keepalived.stats read vrrpd's file unchanged.
"""

from __future__ import annotations

import contextlib
import os

from vrrpd.core.engine import InstanceStatus

DEFAULT_STATS = "/tmp/keepalived.stats"

_STATS_LAYOUT = (
    "VRRP Instance: {name}",
    "  Advertisements:",
    "    Received: {advert_rcvd}",
    "    Sent: {advert_sent}",
    "  Became master: {become_master}",
    "  Released master: {release_master}",
    "  Packet Errors:",
    "    Length: {packet_len_err}",
    "    TTL: {ip_ttl_err}",
    "    Invalid Type: {invalid_type_rcvd}",
    "    Advertisement Interval: {advert_interval_err}",
    "    Address List: {addr_list_err}",
    "  Authentication Errors:",
    "    Invalid Type: {invalid_authtype}",
    "    Type Mismatch: {authtype_mismatch}",
    "    Failure: {auth_failure}",
    "  Priority Zero:",
    "    Received: {pri_zero_rcvd}",
    "    Sent: {pri_zero_sent}",
)


def format_stats(statuses: list[InstanceStatus]) -> str:
    """The text keepalived writes on SIGUSR2, one block per instance."""
    blocks = ["\n".join(_STATS_LAYOUT).format(name=s.name, **s.stats) for s in statuses]
    return "".join(b + "\n" for b in blocks)


def dump_path(configured: str, default: str, pid_file: str | None, suffix: str) -> str:
    """Where a dump goes: the configured file; else, for a daemon given its own `-p` pid file,
    beside it (`X.pid` -> `X.stats`), so copies in other namespaces never share one file;
    else keepalived's default."""
    if configured != default or not pid_file:
        return configured
    stem, _ = os.path.splitext(pid_file)
    return f"{stem}.{suffix}"


def write_atomic(path: str, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a dump."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
