"""Notify hooks: keepalived `notify_*` scripts, the generic `notify`, the notify FIFOs.

keepalived's contract (`vrrp_notify.c`, `notify.c`; keepalived.md section 2.1-2.2):
- `notify_master/backup/fault/stop/deleted`, `notify_master_rx_lower_pri` run with only their
  configured argv; the generic `notify` gets `INSTANCE|GROUP NAME STATE PRIORITY` appended (0
  for a group). Order per event: state script, generic `notify`, FIFO line. Here both scripts
  are forked (vfork, no shell, own session and process group) before `fire` returns and the
  FIFO line is written right after, so that order holds on the wire too; their exit is watched
  by a task, never awaited by the state machine.
- As `user [group]` of the command, else global `script_user [group]`, else keepalived_script
  if it exists, else the daemon's user; `enable_script_security` checks (vrrpd.io.security)
  before every start; `IFS`, `LD_PRELOAD`, `LD_LIBRARY_PATH` removed from the environment.
- STOP scripts get `STOP_TIMEOUT_S` (1 s) and then their process group is SIGKILLed; the daemon
  waits for that before it exits (the watcher tasks live in the runtime's TaskGroup). Other
  notify scripts get `SCRIPT_TIMEOUT_S` (vrrpd's bound; keepalived has none) and, when the daemon
  stops, SIGTERM as keepalived's parent-death signal gives them, SIGKILL a second later.
- `notify_fifo` / `vrrp_notify_fifo` / `lvs_notify_fifo` (VRRP lines to the first two, LVS
  lines to the first and last; a path named twice gets each line once): created (0644, chowned
  to its user) if missing, opened O_RDWR|O_NONBLOCK so an absent or slow reader never blocks the
  daemon: a full pipe drops the line and counts it. Each `*_fifo_script` runs for the daemon's
  lifetime with the FIFO path appended to its argv; at stop it reads the last lines to EOF,
  then gets SIGTERM.
- A missing script, a refused one, a failing or hanging one is logged once per cause and
  counted; the daemon keeps running and keeps its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import stat
import subprocess
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from vrrpd.config.model import Command, Config, FifoSpec, NotifySpec
from vrrpd.io import security
from vrrpd.io.scripts import Identity, resolve_identity, wait_exited

log = structlog.get_logger("vrrpd.notify")

SCRIPT_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 1.0  # keepalived gives STOP scripts one second
KILL_GRACE_S = 1.0  # SIGTERM, then SIGKILL this much later
FIFO_DRAIN_S = 0.5  # a FIFO script reads its last lines before it is told to stop
SCRUBBED_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH")

_STATE_SCRIPT = {
    "MASTER": "master",
    "BACKUP": "backup",
    "FAULT": "fault",
    "STOP": "stop",
    "DELETED": "deleted",
    "MASTER_RX_LOWER_PRI": "master_rx_lower_pri",
}
_GENERIC_EVENTS = frozenset({"MASTER", "BACKUP", "FAULT", "STOP", "DELETED"})

Spawner = Callable[[Coroutine[Any, Any, None]], object]


@dataclass(slots=True)
class _Child:
    proc: subprocess.Popen[bytes]
    name: str  # argv[0], for messages
    kind: str  # "STOP", "FIFO" or "notify"


class Notifier:
    """Runs the notify hooks of one configuration; `close()` at shutdown."""

    def __init__(self, config: Config, spawn: Spawner) -> None:
        self.spawn = spawn
        self.env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        self.running: dict[int, _Child] = {}
        self.spawned = 0
        self.failures = 0
        self.closing = False
        self._logged: set[str] = set()
        self.specs: dict[tuple[str, str], NotifySpec] = {}
        self.fifos: list[Fifo] = []
        self._load(config)

    def _load(self, config: Config) -> None:
        g = config.global_defs
        self.secure = g.enable_script_security
        self.default_user = (g.script_user, g.script_group)
        self.specs = {("INSTANCE", i.name): i.notify for i in config.instances}
        self.specs.update((("GROUP", s.name), s.notify) for s in config.sync_groups)
        self._identities: dict[tuple[str | None, str | None], Identity] = {}
        for spec in self.specs.values():  # keepalived checks every script at load time
            for cmd in _commands(spec):
                self._refusal(cmd, cmd.argv)
        kinds = {"notify_fifo": {"vrrp", "lvs"}, "vrrp_notify_fifo": {"vrrp"},
                 "lvs_notify_fifo": {"lvs"}}  # fmt: skip
        by_path: dict[str, Fifo] = {}
        for field, carries in kinds.items():
            fspec: FifoSpec | None = getattr(g, field)
            if fspec is None:
                continue
            if fspec.path in by_path:  # one file named twice gets each line once
                by_path[fspec.path].carries |= carries
                continue
            fifo = Fifo(fspec, self._identity(fspec.user, fspec.group), carries)
            by_path[fspec.path] = fifo
            self.fifos.append(fifo)
            if fspec.script is not None and fifo.fd is not None:
                self._start(fspec.script, (*fspec.script.argv, fspec.path), "FIFO", None)

    def reload(self, config: Config) -> None:
        """SIGHUP: new scripts and FIFOs; FIFOs are closed and reopened as keepalived does."""
        self._close_fifos()
        self._load(config)

    # -- events ---------------------------------------------------------------------------------

    def fire(self, target: str, name: str, event: str, priority: int) -> None:
        """One event's hooks in keepalived's order: state script, generic `notify`, FIFO line."""
        if target == "GROUP":
            priority = 0  # keepalived passes 0 for a group
        spec = self.specs.get((target, name))
        kind = "STOP" if event == "STOP" else "notify"
        timeout = STOP_TIMEOUT_S if kind == "STOP" or self.closing else SCRIPT_TIMEOUT_S
        if spec is not None:
            attr = _STATE_SCRIPT.get(event)
            script: Command | None = getattr(spec, attr) if attr else None
            if script is not None:
                self._start(script, script.argv, kind, timeout)
            if spec.generic is not None and event in _GENERIC_EVENTS:
                argv = (*spec.generic.argv, target, name, event, str(priority))
                self._start(spec.generic, argv, kind, timeout)
        self.fifo_line(f'{target} "{name}" {event} {priority}\n', "vrrp")

    def fifo_line(self, line: str, kind: str) -> None:
        """To every FIFO that carries `kind` ("vrrp" or "lvs") lines."""
        for fifo in self.fifos:
            if kind in fifo.carries:
                fifo.write(line)

    def _start(
        self, cmd: Command, argv: tuple[str, ...], kind: str, timeout_s: float | None
    ) -> None:
        """Fork now (the order of `fire` is the order of execs), watch the exit in a task."""
        who = self._identity(cmd.user, cmd.group)
        refusal = self._refusal(cmd, argv)
        if refusal is not None:
            self._fail(f"Cannot run notify script {argv[0]}: {refusal}")
            return
        change = who.groups is not None
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,  # own process group: killed as a whole
                env=self.env,
                cwd="/",
                user=who.uid if change else None,
                group=who.gid if change else None,
                extra_groups=list(who.groups or ()) if change else None,
            )
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            cause = getattr(exc, "strerror", None) or str(exc)
            self._fail(f"Failed to exec notify script {argv[0]}: {cause}")
            return
        self.spawned += 1
        child = _Child(proc, argv[0], kind)
        self.running[proc.pid] = child
        self.spawn(self._watch(child, timeout_s))

    def _refusal(self, cmd: Command, argv: tuple[str, ...]) -> str | None:
        who = self._identity(cmd.user, cmd.group)
        if who.error is not None:
            return who.error
        reason = security.check_script(argv, who.uid, who.gid, self.secure)
        return None if reason is None else reason.removesuffix(".").removesuffix(" - disabling")

    def _identity(self, user: str | None, group: str | None) -> Identity:
        """`user [group]` of the command, else global `script_user [group]` (keepalived)."""
        key = (user, group) if user is not None else self.default_user
        found = self._identities.get(key)
        if found is None:
            found = self._identities[key] = resolve_identity(*key)
        return found

    async def _watch(self, child: _Child, timeout_s: float | None) -> None:
        """Wait for the exit; at the timeout kill the group (STOP: SIGKILL at once, keepalived's
        `child_killed_thread`; others SIGTERM, SIGKILL after the grace); always reap."""
        pid = child.proc.pid
        try:
            if await wait_exited(pid, timeout_s):
                self._exit_status(child)
                return
            self._fail(
                f"notify script {child.name} still running after {timeout_s:g}s - killing it"
            )
            if child.kind != "STOP":
                _killpg(pid, signal.SIGTERM)
                if await wait_exited(pid, KILL_GRACE_S):
                    return
            _killpg(pid, signal.SIGKILL)
            await wait_exited(pid, None)
        finally:
            _reap(child)
            self.running.pop(pid, None)

    def _exit_status(self, child: _Child) -> None:
        if self.closing:
            return  # told to stop: not a failure
        rc = _status(child.proc.pid)
        if rc is not None and rc != 0:
            how = f"status {rc}" if rc > 0 else f"signal {-rc}"
            what = "notify FIFO script" if child.kind == "FIFO" else "notify script"
            self._fail(f"{what} {child.name} exited with {how}")

    def _fail(self, line: str) -> None:
        """Counted every time, logged once per cause."""
        self.failures += 1
        if line not in self._logged:
            self._logged.add(line)
            log.error(line)

    # -- shutdown -------------------------------------------------------------------------------

    def close(self) -> None:
        """Daemon stop: close the FIFOs (their scripts read to EOF), then signal what still runs:
        FIFO scripts after `FIFO_DRAIN_S`, other notify scripts at once (keepalived's parent-death
        SIGTERM), SIGKILL `KILL_GRACE_S` later; STOP scripts keep their own second."""
        self.closing = True
        self._close_fifos()

    def _close_fifos(self) -> None:
        for fifo in self.fifos:
            fifo.close()
        self.fifos = []
        for child in list(self.running.values()):
            if child.kind == "STOP" or (child.kind == "notify" and not self.closing):
                continue
            delay = FIFO_DRAIN_S if child.kind == "FIFO" else 0.0
            _later(delay, _signal_child, child, signal.SIGTERM)
            _later(delay + KILL_GRACE_S, _signal_child, child, signal.SIGKILL)


class Fifo:
    """keepalived `notify_fifo`: created 0644 if missing, opened O_RDWR|O_NONBLOCK so a slow or
    absent reader never blocks the daemon; a full pipe drops the line and counts it."""

    def __init__(
        self, spec: FifoSpec, owner: Identity | None = None, carries: set[str] | None = None
    ) -> None:
        self.path = spec.path
        self.carries = carries if carries is not None else {"vrrp", "lvs"}
        self.fd: int | None = None
        self.written = 0
        self.dropped = 0
        self._full = False
        try:
            if not os.path.lexists(self.path):
                os.mkfifo(self.path, 0o644)
                if spec.user is not None and owner is not None and owner.error is None:
                    os.chown(self.path, owner.uid, owner.gid)
            if not stat.S_ISFIFO(os.stat(self.path).st_mode):
                raise OSError(errno.EINVAL, "not a FIFO")
            self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            log.error(f"Unable to open notify FIFO {self.path}: {exc.strerror}")

    def write(self, line: str) -> None:
        """One line, whole or not at all (lines are shorter than PIPE_BUF, so atomic)."""
        if self.fd is None:
            self.dropped += 1
            return
        try:
            os.write(self.fd, line.encode())
        except OSError as exc:
            self.dropped += 1
            if not self._full:  # once per episode, not per line
                self._full = True
                cause = "full (reader too slow?)" if exc.errno == errno.EAGAIN else exc.strerror
                log.warning(f"notify FIFO {self.path} {cause} - dropping lines")
            return
        self.written += 1
        self._full = False

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _commands(spec: NotifySpec) -> list[Command]:
    cmds = (spec.master, spec.backup, spec.fault, spec.stop, spec.deleted, spec.generic)
    return [c for c in (*cmds, spec.master_rx_lower_pri) if c is not None]


def _later(delay: float, fn: Callable[..., None], *args: Any) -> None:
    try:
        asyncio.get_running_loop().call_later(delay, fn, *args)
    except RuntimeError:  # no loop (tests, teardown): now
        fn(*args)


def _signal_child(child: _Child, sig: int) -> None:
    if child.proc.returncode is None:  # not reaped yet, so its group id is still its own
        _killpg(child.proc.pid, sig)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _reap(child: _Child) -> None:
    """Reap the leader; if it still runs (the watcher was cancelled), SIGKILL its group."""
    if child.proc.returncode is not None:
        return
    if _status(child.proc.pid) is None:
        _killpg(child.proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.proc.wait(timeout=5)


def _status(pid: int) -> int | None:
    """Exit status of an exited, unreaped child (negative: the signal); None while it runs."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
