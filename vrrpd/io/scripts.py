"""Run one `vrrp_script` check: no shell, its own process group, a hard timeout, always reaped.

keepalived's contract (man keepalived.conf "VRRP script(s)", keepalived.md section 2.3):
- argv as the config split it, executed without a shell (PATH is searched for a bare name);
- as `user [group]` of the script block, else global `script_user`, else keepalived_script if
  that user exists, else the daemon's own user; `IFS`, `LD_PRELOAD` and `LD_LIBRARY_PATH` are
  removed from the environment, stdin/stdout/stderr are /dev/null (a script that floods its
  output costs nothing);
- exit status 0 is success; any other status, death by a signal, or still running at `timeout`
  is a failure. At the timeout the whole process group gets SIGTERM, then SIGKILL after
  `KILL_GRACE_S`; whatever is left of the group is SIGKILLed while the leader is still an
  unreaped zombie (so the group id cannot have been reused), then the leader is reaped.

The child is forked in a worker thread (fork of a big process must not stall the event loop)
and its exit is awaited on a pidfd (Linux 5.3+), with a short poll as fallback. Nothing here
blocks the caller's loop, and `close()` leaves no process and no zombie behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal
import subprocess
from dataclasses import dataclass

import structlog

from vrrpd.io import security

log = structlog.get_logger("vrrpd.scripts")

KILL_GRACE_S = 1.0  # SIGTERM at the timeout, SIGKILL this much later
POLL_FALLBACK_S = 0.02
SCRUBBED_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH")


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one run ended: `rc` exit status, `signal` that killed it, `timed_out`, or `error`
    (it could not be started; the reason was logged once)."""

    rc: int | None = None
    signal: int | None = None
    timed_out: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a script runs as; `error` when the configured user or group does not exist."""

    uid: int
    gid: int
    groups: tuple[int, ...] | None = None
    error: str | None = None


def resolve_identity(user: str | None, group: str | None) -> Identity:
    """`user [group]` to uid/gid and supplementary groups, via `vrrpd.io.security`."""
    found = security.script_identity(user, group)
    if isinstance(found, str):
        return Identity(os.getuid(), os.getgid(), error=found)
    uid, gid = found
    if uid == os.getuid() and gid == os.getgid():
        return Identity(uid, gid)  # no identity change: keep our groups, allow vfork
    try:
        name = pwd.getpwuid(uid).pw_name
        groups = tuple(os.getgrouplist(name, gid))
    except (KeyError, OSError):
        groups = (gid,)
    return Identity(uid, gid, groups)


class ScriptRunner:
    """Runs check scripts for the tracker service; `close()` at shutdown."""

    def __init__(self, secure: bool) -> None:
        self.secure = secure
        self.running: dict[int, subprocess.Popen[bytes]] = {}
        self.env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        self.reported: set[str] = set()
        self._spawning: set[asyncio.Future[subprocess.Popen[bytes]]] = set()
        self.spawned = 0
        self.failed_to_start = 0
        self.killed = 0

    async def run(self, argv: tuple[str, ...], who: Identity, timeout_s: float) -> RunResult:
        """Run `argv` once as `who`; never raises but CancelledError, always reaps."""
        refusal = who.error or security.check_script(argv, who.uid, who.gid, self.secure)
        if refusal is not None:
            return self._not_run(argv, refusal)
        spawn = asyncio.ensure_future(asyncio.to_thread(self._spawn, argv, who))
        self._spawning.add(spawn)
        spawn.add_done_callback(self._spawning.discard)
        try:
            proc = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            spawn.add_done_callback(self._kill_orphan)  # the fork finishes in its thread
            raise
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            return self._not_run(argv, getattr(exc, "strerror", None) or str(exc))
        self.running[proc.pid] = proc
        self.spawned += 1
        try:
            return await self._wait(proc, timeout_s)
        finally:
            self._reap(proc)

    def _not_run(self, argv: tuple[str, ...], reason: str) -> RunResult:
        self.failed_to_start += 1
        reason = reason.removesuffix(".").removesuffix(" - disabling")
        self._once(f"Cannot run script {argv[0]}: {reason}")
        return RunResult(error=reason)

    def _kill_orphan(self, spawn: asyncio.Future[subprocess.Popen[bytes]]) -> None:
        if not spawn.cancelled() and spawn.exception() is None:
            proc = spawn.result()
            _killpg(proc.pid, signal.SIGKILL)
            self._reap(proc)

    def _spawn(self, argv: tuple[str, ...], who: Identity) -> subprocess.Popen[bytes]:
        change = who.groups is not None
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,  # its own session and process group: killed as a whole
            env=self.env,
            cwd="/",
            user=who.uid if change else None,
            group=who.gid if change else None,
            extra_groups=list(who.groups or ()) if change else None,
        )

    async def _wait(self, proc: subprocess.Popen[bytes], timeout_s: float) -> RunResult:
        """Wait for the exit; at the timeout SIGTERM the group, SIGKILL it after the grace,
        and SIGKILL it once more while the leader is an unreaped zombie (the group id cannot
        have been reused), so no child of a killed script survives."""
        if await wait_exited(proc.pid, timeout_s):
            return _result(proc)
        self.killed += 1
        _killpg(proc.pid, signal.SIGTERM)
        if not await wait_exited(proc.pid, KILL_GRACE_S):
            _killpg(proc.pid, signal.SIGKILL)
            await wait_exited(proc.pid, None)
        _killpg(proc.pid, signal.SIGKILL)
        return RunResult(timed_out=True)

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        """Reap the leader; if it still runs (the caller was cancelled), SIGKILL its group
        first. Never blocks long: a SIGKILLed process exits at once."""
        self.running.pop(proc.pid, None)
        if proc.returncode is not None:
            return
        if not _is_zombie(proc.pid):
            _killpg(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.error(f"script pid {proc.pid} did not die after SIGKILL")

    async def close(self) -> None:
        """Stop: let pending forks finish, then SIGKILL every running script's group and reap
        it, so no check script outlives the daemon."""
        if self._spawning:
            await asyncio.wait(list(self._spawning), timeout=5)
        for proc in list(self.running.values()):
            _killpg(proc.pid, signal.SIGKILL)
            self._reap(proc)

    def _once(self, line: str) -> None:
        """A missing or unusable script is reported once, not at every interval."""
        if line not in self.reported:
            self.reported.add(line)
            log.error(line)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _is_zombie(pid: int) -> bool:
    """True when `pid` has exited but is not reaped yet (waitid WNOWAIT leaves it so)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return info is not None


def _result(proc: subprocess.Popen[bytes]) -> RunResult:
    """The exit status of an exited (zombie) leader, read without reaping it."""
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        info = None
    if info is None:
        code = proc.returncode
        if code is None:
            return RunResult(error="no exit status")
        return RunResult(signal=-code) if code < 0 else RunResult(rc=code)
    if info.si_code == os.CLD_EXITED:
        return RunResult(rc=info.si_status)
    return RunResult(signal=info.si_status)


async def wait_exited(pid: int, timeout_s: float | None) -> bool:
    """Wait until `pid` has exited (without reaping it); False at the timeout."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        fd = -1
    if fd < 0:
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while not _is_zombie(pid):
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(POLL_FALLBACK_S)
        return True
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await asyncio.wait_for(done, timeout_s)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)
