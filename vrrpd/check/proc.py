"""Running a MISC_CHECK, notify_up/notify_down or quorum_up/quorum_down command the way
keepalived does (`check_misc.c`, `notify.c`): argv without a shell, as `user [group]` when given,
in its own process group, stdin/stdout/stderr on /dev/null. At the timeout the whole group gets
SIGTERM, then SIGKILL after `KILL_GRACE_S` (keepalived waits 2 s); a cancelled run kills the
group at once. The leader is always reaped, so nothing outlives the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

from vrrpd.config.model import Command

KILL_GRACE_S = 2.0
SCRUBBED_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH")


@dataclass(frozen=True, slots=True)
class ProcResult:
    """How a run ended: exit status `rc`, killing `signal`, `timed_out`, or `error` (not run)."""

    rc: int | None = None
    signal: int | None = None
    timed_out: bool = False
    error: str | None = None


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def run_command(cmd: Command, timeout_s: float) -> ProcResult:
    """Run `cmd` once; never raises but CancelledError (after killing and reaping it)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its own process group, killed as a whole
            env=env,
            cwd="/",
            user=cmd.user,
            group=cmd.group,
        )
    except (OSError, ValueError, KeyError) as exc:
        return ProcResult(error=getattr(exc, "strerror", None) or str(exc))
    try:
        rc = await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        _killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), KILL_GRACE_S)
        except TimeoutError:
            _killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        _killpg(proc.pid, signal.SIGKILL)  # children of the leader that ignored SIGTERM
        return ProcResult(timed_out=True)
    except asyncio.CancelledError:
        _killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(proc.wait())
        raise
    return ProcResult(signal=-rc) if rc < 0 else ProcResult(rc=rc)
