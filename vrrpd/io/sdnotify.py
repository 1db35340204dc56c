"""systemd's notify protocol (sd_notify(3)) without libsystemd: one datagram to $NOTIFY_SOCKET.

The daemon sends `READY=1` once its sockets are open and its instances started, `STOPPING=1`
when it begins to stop, and around a SIGHUP reload `RELOADING=1` with `MONOTONIC_USEC` (what
`Type=notify-reload` units of systemd 253+ require) followed by `READY=1` when the reload is
done or aborted. Without $NOTIFY_SOCKET every call does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time


def sd_notify(state: str) -> None:
    """Send `state` (newline-separated VAR=value) if systemd is listening; never raises."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    addr = "\0" + path[1:] if path.startswith("@") else path
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode(), addr)


def reloading() -> str:
    """The `RELOADING=1` message, stamped with CLOCK_MONOTONIC in microseconds."""
    return f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
