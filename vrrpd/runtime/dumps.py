"""keepalived's signal dumps: SIGUSR2 writes the stats file in `vrrp_print.c`'s layout,
SIGUSR1 the data file (`datadump`), SIGRTMIN+2 the JSON file (`jsondump`).

The layouts are copied from what Debian's keepalived 2.2.7 writes (checked in a namespace), so
scripts and exporters that parse /tmp/keepalived.{stats,data,json} read vrrpd's files unchanged.
`SIGFUNCS` is keepalived's table of signal functions (`keepalived --signum=NAME`, man 8
keepalived "SIGNALS"), shared by the command line and the daemon's handlers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import structlog

from vrrpd.core.engine import InstanceStatus
from vrrpd.runtime.datadump import DEFAULT_DATA, format_data
from vrrpd.runtime.jsondump import DEFAULT_JSON, format_json

if TYPE_CHECKING:
    from vrrpd.runtime.daemon import Runtime

log = structlog.get_logger("vrrpd")

DEFAULT_STATS = "/tmp/keepalived.stats"

# keepalived 2.2.7 `--signum=NAME` (TDATA is a debug-build function: "Unknown sigfunc TDATA").
SIGFUNCS: dict[str, int] = {
    "STOP": signal.SIGTERM,
    "RELOAD": signal.SIGHUP,
    "DATA": signal.SIGUSR1,
    "STATS": signal.SIGUSR2,
    "STATS_CLEAR": signal.SIGRTMAX - 1,
    "JSON": signal.SIGRTMIN + 2,
}
# The signals whose dumps `write_dump` writes (SIGUSR2 and STATS_CLEAR are the daemon's own).
DUMP_SIGNALS: dict[int, str] = {SIGFUNCS["DATA"]: "data", SIGFUNCS["JSON"]: "json"}

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


def write_dump(runtime: Runtime, kind: str, now: float) -> None:
    """SIGUSR1 (`kind` "data") or SIGRTMIN+2 ("json"): format from the engine as it is now
    (this runs in the consumer task) and write the file atomically; a failure is logged."""
    g = runtime.config.global_defs
    if kind == "json":
        path = dump_path(g.json_dump_file, DEFAULT_JSON, runtime.pid_file, "json")
        text = format_json(runtime.config, runtime.engine, now, time.time())
    else:
        path = dump_path(g.state_dump_file, DEFAULT_DATA, runtime.pid_file, "data")
        scripts = _trackers_snapshot(runtime)
        text = format_data(runtime.config, runtime.engine, now, time.time(), scripts)
    try:
        write_atomic(path, text)
    except OSError as exc:
        log.error(f"Unable to write {kind} file {path}: {exc.strerror}")


def _trackers_snapshot(runtime: Runtime) -> Any:
    """The "trackers" service's `snapshot()` if it runs; a failing one only costs the scripts'
    status in the dump."""
    service = next((s for s in runtime.services if s.name == "trackers"), None)
    snapshot = getattr(service, "snapshot", None)
    if snapshot is None:
        return None
    try:
        return snapshot()
    except Exception as exc:  # a dump must not take the daemon down
        log.error(f"trackers snapshot failed: {exc!r}")
        return None
