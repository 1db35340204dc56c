"""Notify hooks: keepalived `notify_*` scripts, the generic `notify`, and the notify FIFOs.

keepalived `vrrp_notify.c` contract: a state script gets only its configured argv; the generic
`notify` gets `INSTANCE|GROUP NAME STATE PRIORITY` appended; order is state script, generic,
FIFO line. Scripts are spawned without a shell in their own process group and never awaited by
the state machine; each gets a time limit after which its whole group is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import stat
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from vrrpd.config.model import Command, Config, FifoSpec, NotifySpec

log = structlog.get_logger("vrrpd.notify")

SCRIPT_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 1.0  # keepalived gives STOP scripts one second

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


class Notifier:
    """Runs notify hooks for instances and groups of one configuration."""

    def __init__(self, config: Config, spawn: Spawner) -> None:
        self.spawn = spawn
        self.specs: dict[tuple[str, str], NotifySpec] = {}
        for inst in config.instances:
            self.specs[("INSTANCE", inst.name)] = inst.notify
        for group in config.sync_groups:
            self.specs[("GROUP", group.name)] = group.notify
        g = config.global_defs
        self.fifos = [Fifo(f) for f in (g.notify_fifo, g.vrrp_notify_fifo) if f is not None]
        self.failures = 0

    def fire(self, target: str, name: str, event: str, priority: int) -> None:
        """Spawn the hooks for one event, in keepalived's order."""
        spec = self.specs.get((target, name))
        timeout = STOP_TIMEOUT_S if event == "STOP" else SCRIPT_TIMEOUT_S
        if spec is not None:
            attr = _STATE_SCRIPT.get(event)
            script: Command | None = getattr(spec, attr) if attr else None
            if script is not None:
                self.spawn(self._run(script.argv, timeout))
            if spec.generic is not None and event in _GENERIC_EVENTS:
                argv = (*spec.generic.argv, target, name, event, str(priority))
                self.spawn(self._run(argv, timeout))
        line = f'{target} "{name}" {event} {priority}\n'
        for fifo in self.fifos:
            fifo.write(line)

    async def _run(self, argv: tuple[str, ...], timeout_s: float) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            self.failures += 1
            log.error(f"Failed to exec notify script {argv[0]}: {exc.strerror}")
            return
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            self.failures += 1
            log.warning(f"notify script {argv[0]} timed out after {timeout_s:g}s - killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    def close(self) -> None:
        for fifo in self.fifos:
            fifo.close()


class Fifo:
    """keepalived `notify_fifo`: created 0644 if missing, opened O_RDWR|O_NONBLOCK so a slow or
    absent reader never blocks the daemon (a full pipe drops the line)."""

    def __init__(self, spec: FifoSpec) -> None:
        self.path = spec.path
        self.fd: int | None = None
        try:
            if not os.path.exists(self.path):
                os.mkfifo(self.path, 0o644)
            if not stat.S_ISFIFO(os.stat(self.path).st_mode):
                raise OSError(errno.EINVAL, "not a FIFO")
            self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        except OSError as exc:
            log.error(f"Unable to open notify FIFO {self.path}: {exc.strerror}")

    def write(self, line: str) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(BlockingIOError):
            os.write(self.fd, line.encode())

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
