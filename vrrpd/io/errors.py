"""The error the OS adapters raise: one type, with the operation, interface and errno.

The runtime catches `IoError` and logs one line (`cannot open raw socket on eth9: No such
device`) instead of letting a traceback reach the user.
"""

from __future__ import annotations

import errno as errno_mod
import os

from vrrpd.errors import VrrpdError


class IoError(VrrpdError):
    """An OS call failed; `op` says what we tried, `errno` is the kernel's answer (0 if none)."""

    def __init__(
        self, op: str, interface: str | None = None, err: int = 0, detail: str = ""
    ) -> None:
        self.op = op
        self.interface = interface
        self.errno = err
        self.detail = detail
        where = f" on {interface}" if interface else ""
        why = detail or (os.strerror(err) if err else "failed")
        name = errno_mod.errorcode.get(err, "")
        super().__init__(f"{op}{where}: {why}" + (f" ({name})" if name else ""))

    @classmethod
    def from_os(cls, op: str, interface: str | None, exc: OSError) -> IoError:
        """Wrap an `OSError` (or pyroute2's `NetlinkError`, which carries `.code`)."""
        err = getattr(exc, "errno", None) or getattr(exc, "code", 0) or 0
        return cls(op, interface, int(err))
