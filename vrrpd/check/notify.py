"""LVS notifications (keepalived `ipwrapper.c` `do_rs_notifies`, `do_vs_notifies`): a real
server's `notify_up`/`notify_down` and a virtual server's `quorum_up`/`quorum_down` scripts, and
the notify FIFO lines `RS [rs]:tcp:80 [vs]:tcp:80 UP|DOWN` and `VS [vs]:tcp:80 UP|DOWN`.

Scripts are spawned, never awaited by the caller: the notifier owns their tasks, bounds each by
`SCRIPT_TIMEOUT_S` (`STOP_TIMEOUT_S` when stopping, as keepalived gives one second) and `close()`
kills whatever is left. FIFO lines go to the `fifo_write` callable the daemon passes in (its
`notify_fifo`/`lvs_notify_fifo` writers); the order is script, then FIFO line, as keepalived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from vrrpd.check.proc import run_command
from vrrpd.config.lvsmodel import RealServerSpec, VirtualServerSpec, rs_label, vs_label
from vrrpd.config.model import Command
from vrrpd.config.values import join_command

log = structlog.get_logger("vrrpd.check")

SCRIPT_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 1.0


def vs_fifo_line(vs: VirtualServerSpec, up: bool) -> str:
    """`VS [192.0.2.10]:tcp:80 UP` (the virtual server's quorum state)."""
    return f"VS {vs_label(vs)} {'UP' if up else 'DOWN'}\n"


def rs_fifo_line(vs: VirtualServerSpec, rs: RealServerSpec, up: bool) -> str:
    """`RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 DOWN`."""
    return f"RS {rs_label(vs, rs)} {vs_label(vs)} {'UP' if up else 'DOWN'}\n"


class LvsNotifier:
    """Runs the LVS notify scripts and writes the FIFO lines."""

    def __init__(self, fifo_write: Callable[[str], None] | None = None) -> None:
        self.fifo_write = fifo_write
        self.tasks: set[asyncio.Task[None]] = set()
        self.failures = 0

    def rs_changed(
        self, vs: VirtualServerSpec, rs: RealServerSpec, up: bool, stopping: bool = False
    ) -> None:
        """A real server went up or down: its notify script, then the FIFO line."""
        script = rs.notify_up if up else rs.notify_down
        if script is not None:
            log.info(f"Executing [{join_command(script.argv)}] for service "
                     f"{rs_label(vs, rs)} in VS {vs_label(vs)}")  # fmt: skip
            self._spawn(script, STOP_TIMEOUT_S if stopping else SCRIPT_TIMEOUT_S)
        self._fifo(rs_fifo_line(vs, rs, up))

    def vs_changed(self, vs: VirtualServerSpec, up: bool, stopping: bool = False) -> None:
        """A virtual server gained or lost its quorum: quorum_up/quorum_down, the FIFO line."""
        script = vs.quorum_up if up else vs.quorum_down
        if script is not None:
            log.info(f"Executing [{join_command(script.argv)}] for VS {vs_label(vs)}")
            self._spawn(script, STOP_TIMEOUT_S if stopping else SCRIPT_TIMEOUT_S)
        self._fifo(vs_fifo_line(vs, up))

    def _fifo(self, line: str) -> None:
        if self.fifo_write is not None:
            try:
                self.fifo_write(line)
            except OSError as exc:  # a FIFO writer must never break a checker
                log.warning(f"notify FIFO write failed: {exc}")

    def _spawn(self, script: Command, timeout_s: float) -> None:
        task = asyncio.get_running_loop().create_task(self._run(script, timeout_s))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, script: Command, timeout_s: float) -> None:
        result = await run_command(script, timeout_s)
        if result.error is not None or result.timed_out:
            self.failures += 1
            why = result.error or f"timed out after {timeout_s:g}s - killed"
            log.warning(f"notify script {script.argv[0]}: {why}")

    async def close(self, grace_s: float = STOP_TIMEOUT_S) -> None:
        """Let running scripts finish for `grace_s`, then kill the rest (and reap them)."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace_s)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
