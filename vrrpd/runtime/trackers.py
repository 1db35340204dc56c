"""The tracker service: `vrrp_script`, `track_interface`, `track_file`, `vrrp_track_process`.

Inputs come from four places and all go through the pure `core.tracking.Tracking`, whose
updates (keepalived's log lines, then priority deltas and fault switches) are handed to the
consumer task with `runtime.submit`, the one place engine state changes:

- each referenced `vrrp_script` runs in its own task, every `interval` (sub-second allowed)
  from the start of the previous run; a run that overruns its interval delays the next one
  instead of overlapping it (keepalived: `... is already running, expect idle - skipping run`).
  `io.scripts` runs it without a shell, in its own process group, killed at its timeout;
- `track_interface` follows `runtime.link_listeners` (netlink), starting from the engine's links;
- `track_file` follows inotify (`io.watch.FileWatcher`), after `init_file` has written the file;
- `vrrp_track_process` polls /proc (`io.watch.count_processes`) and ticks the fork/terminate
  delays.

Weight-0 scripts raise their fault at start (INIT) and keep it until their first result. The
engine has already started the instances when services start, so such an instance logs
`Entering BACKUP STATE (init)` before it goes to FAULT; keepalived keeps it silently in INIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog

from vrrpd.check.net import raise_if_cancelled
from vrrpd.config.model import (
    Config,
    InstanceConfig,
    ScriptSpec,
    SyncGroupConfig,
    TrackProcessSpec,
)
from vrrpd.core.actions import Action
from vrrpd.core.reload import carry_scripts, restate
from vrrpd.core.tracking import Change, FaultChange, PriorityDelta, Tracking, Update, plan_watches
from vrrpd.io.netlink import LinkInfo
from vrrpd.io.scripts import RunResult, ScriptRunner, resolve_identity
from vrrpd.io.watch import PROC_POLL_S, FileWatcher, count_processes, init_file

if TYPE_CHECKING:
    from vrrpd.runtime.daemon import Runtime

log = structlog.get_logger("vrrpd.trackers")

MIN_INTERVAL_S = 0.01  # a 1 us `interval` would fork without pause; 100 runs/s is the ceiling
RESTART_DELAY_S = 1.0


def has_trackers(config: Config) -> bool:
    """Whether any instance or sync group follows a tracker (else no service is needed)."""
    owners: list[InstanceConfig | SyncGroupConfig] = [*config.instances, *config.sync_groups]
    return any(
        o.track_scripts or o.track_interfaces or o.track_files or o.track_processes for o in owners
    )


class TrackerService:
    """Runs the trackers of one configuration (see the module docstring)."""

    name = "trackers"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tracking = Tracking(runtime.config)
        self.runner = ScriptRunner(secure=runtime.config.global_defs.enable_script_security)
        self.files: FileWatcher | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._overrun_logged: set[str] = set()
        self._watched_for: Config | None = None
        self._watched_set: frozenset[tuple[str, str]] = frozenset()

    async def start(self) -> None:
        for file_spec in self.tracking.files.values():
            init_file(file_spec)
        self.files = files = FileWatcher(self.tracking.files.values(), self._on_file)
        procs = list(self.tracking.processes.values())
        counts = await asyncio.to_thread(count_processes, procs) if procs else {}
        links = {name: link.up for name, link in self.runtime.engine.links.items()}
        # Restated in full: after a reload the engine may hold values the new set must replace.
        self._apply(restate(self.tracking, self.tracking.start(links, files.values, counts)))
        self.runtime.link_listeners.append(self._on_link)
        loop = asyncio.get_running_loop()
        if self.tracking.files:
            files.start(loop)
            self._spawn(files.run, "track_file watcher")
        if procs:
            self._spawn(lambda: self._process_loop(procs), "process watcher")
        for spec in self.tracking.scripts.values():
            self._spawn(partial(self._script_loop, spec), f"vrrp_script {spec.name}")

    async def stop(self) -> None:
        """Cancel every loop, then SIGKILL and reap any check script still running."""
        with contextlib.suppress(ValueError):
            self.runtime.link_listeners.remove(self._on_link)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.runner.close()
        if self.files is not None:
            self.files.close(asyncio.get_running_loop())

    async def reload(self, config: Config) -> None:
        """SIGHUP: every loop stopped and every check script killed (keepalived SIGTERMs them),
        then all started again from `config`; a `vrrp_script` whose name survives keeps its
        result (core/reload.py `carry_scripts`), so an unchanged tracker moves nothing."""
        await self.stop()
        old, self.tracking = self.tracking, Tracking(config)
        for line in carry_scripts(old, self.tracking):
            log.info(line)
        self.runner = ScriptRunner(secure=config.global_defs.enable_script_security)
        await self.start()

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Every tracker: {name: {"type": script|interface|file|process, "status":
        INIT|GOOD|BAD, "weight", "reverse", kind details, "instances": {...}}}."""
        return self.tracking.snapshot()

    def initial_faults(self) -> list[tuple[str, str, str]]:
        """(instance, key, reason) for weight-0 scripts that have not run yet: what a daemon
        that builds services before `engine.start` could raise so instances start in FAULT."""
        update = Tracking(self.runtime.config).start({}, {}, {})
        return [
            (c.instance, c.key, c.reason)
            for c in update.changes
            if isinstance(c, FaultChange) and c.reason and c.key.startswith("script:")
        ]

    # -- inputs ---------------------------------------------------------------------------------

    def _on_link(self, info: LinkInfo) -> None:
        self._apply(self.tracking.link(info.interface, info.up))

    def _on_file(self, name: str, value: int) -> None:
        self._apply(self.tracking.file_value(name, value))

    async def _script_loop(self, spec: ScriptSpec) -> None:
        """keepalived `vrrp_script`: run at once, then every `interval` from each start."""
        g = self.runtime.config.global_defs
        who = resolve_identity(
            spec.user or g.script_user, spec.group if spec.user else g.script_group
        )
        interval = max(spec.interval_s, MIN_INTERVAL_S)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                result = await self.runner.run(spec.argv, who, spec.timeout_s)
            except (OSError, RuntimeError) as exc:  # thread pool gone, fd exhaustion, ...
                result = RunResult(error=str(exc))
            raise_if_cancelled()
            self._apply(
                self.tracking.script_result(
                    spec.name,
                    rc=result.rc,
                    signal=result.signal,
                    timed_out=result.timed_out,
                    error=result.error,
                )
            )
            next_at += interval
            now = loop.time()
            if next_at < now:
                self._overran(spec.name)
                next_at += interval * math.ceil((now - next_at) / interval)
            await asyncio.sleep(next_at - now)

    def _overran(self, name: str) -> None:
        if name not in self._overrun_logged:
            self._overrun_logged.add(name)
            log.warning(f"Track script {name} is already running, expect idle - skipping run")

    async def _process_loop(self, specs: list[TrackProcessSpec]) -> None:
        """Poll /proc; fire fork/terminate delays on time."""
        loop = asyncio.get_running_loop()
        delay = PROC_POLL_S
        while True:
            await asyncio.sleep(delay)
            counts = await asyncio.to_thread(count_processes, specs)
            raise_if_cancelled()
            now = loop.time()
            update = Update()
            for name, count in counts.items():
                update += self.tracking.process_count(name, count, now)
            update += self.tracking.tick(now)
            self._apply(update)
            deadline = self.tracking.next_deadline()
            delay = PROC_POLL_S if deadline is None else min(PROC_POLL_S, deadline - now)
            delay = max(delay, 0.01)

    # -- output ---------------------------------------------------------------------------------

    def _apply(self, update: Update) -> None:
        for line in update.logs:
            log.info(line)
        if update.changes:
            changes = tuple(update.changes)
            self.runtime.submit(lambda now: self._engine_apply(changes, now))

    def _engine_apply(self, changes: tuple[Change, ...], now: float) -> list[Action]:
        """In the consumer task: each change becomes `set_priority` / `set_fault`."""
        engine = self.runtime.engine
        watched = self._watched()
        actions: list[Action] = []
        for change in changes:
            pair = (change.instance, change.key)
            if pair not in watched or change.instance not in engine.instances:
                continue
            if isinstance(change, PriorityDelta):
                delta = (change.key, change.amount)
                actions += engine.set_priority(change.instance, now, delta=delta)
            else:
                actions += engine.set_fault(change.instance, change.key, change.reason, now)
        return actions

    def _watched(self) -> frozenset[tuple[str, str]]:
        """(instance, tracker key) pairs the running configuration tracks: a change a loop sent
        just before a reload, for a tracker the new configuration dropped, is not applied."""
        config = self.runtime.config
        if self._watched_for is not config:
            self._watched_set = frozenset((w.instance, w.key) for w in plan_watches(config)[0])
            self._watched_for = config
        return self._watched_set

    def _spawn(self, loop: Callable[[], Coroutine[Any, Any, None]], what: str) -> None:
        tasks = self.runtime.tasks
        assert tasks is not None, "services start inside Runtime.run"
        self._tasks.append(tasks.create_task(_guarded(loop, what)))


async def _guarded(loop: Callable[[], Coroutine[Any, Any, None]], what: str) -> None:
    """Run a tracker loop; if it fails, log it and start it again a second later. It never
    takes the daemon's TaskGroup (and with it the daemon) down."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(f"{what} failed: {exc!r}; restarting it")
        await asyncio.sleep(RESTART_DELAY_S)


def build(runtime: Runtime) -> list[TrackerService]:
    """The service when the configuration tracks anything (`services.build_services`)."""
    return [TrackerService(runtime)] if has_trackers(runtime.config) else []
