"""The LVS service: health checkers drive the kernel's IPVS table (keepalived's checker process).

At start the service opens IPVS (a kernel without it is logged as keepalived does, `IPVS: Can't
initialize ipvs`, and the LVS side stays off while VRRP runs on), builds the checkers
(`vrrpd.check.CheckerSet`) and the table (`lvs_table.LvsTable`: real servers, quorum, sorry
server), programs the whole table once, then starts the checkers. Each verdict a checker
reports updates the table (quorum changes are logged with keepalived's lines and notified with
`quorum_up`/`quorum_down` and the FIFO `VS ... UP|DOWN` line) and wakes one applier task, which
brings the kernel in line with `Ipvs.apply`: a dump, then only the differences. Verdicts that
arrive while an apply runs are folded into the next one.

`reload(config)` rebuilds checkers and table, keeping each surviving real server's state and
each virtual server's quorum, and applies only the differences (no flap for what did not
change). `ha_suspend` pauses a virtual server's checkers while its address is not configured
here, looked for every second. `stop()` stops the checkers (with `omega`, the down notifies),
then removes the services this process programmed, unless `-I/--dont-release-ipvs`.

`SyncDaemonService` is keepalived's `lvs_sync_daemon`: the kernel's IPVS connection-sync
daemon, in master state while the named VRRP instance is MASTER and in backup state otherwise
(both while no instance is named). It follows the instance through the executor's
`state_listeners`; like keepalived's VRRP process, it runs only where VRRP instances do (not
under -C), and the daemons it started are stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING

import structlog

from vrrpd.config.model import Config, LvsSyncDaemonSpec
from vrrpd.core.actions import State
from vrrpd.io.errors import IoError

if TYPE_CHECKING:
    from vrrpd.check import CheckerSet, RsChange
    from vrrpd.io.ipvs import Changes, Ipvs
    from vrrpd.runtime.daemon import Runtime
    from vrrpd.runtime.lvs_table import LvsTable, QuorumEvent

log = structlog.get_logger("vrrpd.lvs")

HA_SUSPEND_POLL_S = 1.0  # how often `ha_suspend` looks for the virtual servers' addresses
STOP_APPLY_S = 10.0  # at stop, how long an apply in flight may take to finish


class LvsService:
    """`name = "lvs"`: checkers plus the IPVS reconciler for `config.virtual_servers`."""

    name = "lvs"

    def __init__(self, runtime: Runtime) -> None:
        # Imported here: a VRRP-only daemon never loads the checkers (ssl, http) or IPVS.
        from vrrpd.check import LvsNotifier  # noqa: PLC0415
        from vrrpd.io.ipvs import Ipvs  # noqa: PLC0415

        self.runtime = runtime
        self.config = runtime.config
        self.release = getattr(runtime, "release_ipvs", True)
        self.ipvs = Ipvs()
        self.notifier = LvsNotifier(self._fifo_write)
        self.checkers: CheckerSet | None = None
        self.table: LvsTable | None = None
        self.error: str | None = None  # why the LVS side is off (no IPVS in the kernel)
        self.applies = 0
        self.apply_errors = 0
        self.recent: deque[Changes] = deque(maxlen=32)  # the last applies that changed something
        self._dirty = asyncio.Event()
        self._applier: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self.error = await _open(self.ipvs)
        if self.error is not None:
            log.error("LVS: virtual servers are not programmed; VRRP keeps running")
            return
        self._build(self.config, None)
        await self._apply()
        self._applier = self._spawn(self._apply_loop())
        assert self.checkers is not None
        await self.checkers.start()
        self._suspend_checks()  # before any checker's first attempt
        self._watcher = self._spawn(self._watch_addresses())

    async def reload(self, config: Config) -> None:
        """SIGHUP: new checkers and table from `config`; only the differences reach IPVS."""
        if self.error is not None:
            return
        previous = self.table
        if self.checkers is not None:
            await self.checkers.stop()
        self.config = config
        self._build(config, previous)
        self._dirty.set()
        assert self.checkers is not None
        await self.checkers.start()
        self._suspend_checks()

    async def stop(self) -> None:
        await _cancel(self._watcher)
        if self.checkers is not None:
            await self.checkers.stop()  # `omega`: real servers' down notifies
        # The applier finishes an apply in flight (a netlink request cut in the middle would
        # leave its reply on the socket the clear below uses), then ends.
        self._stopping = True
        self._dirty.set()
        if self._applier is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._applier), STOP_APPLY_S)
            except TimeoutError:
                await _cancel(self._applier)
        self._watcher = self._applier = None
        if self.table is not None:
            for state in self.table.vs.values():
                if state.spec.omega and state.quorum_up:  # keepalived runs quorum_down too
                    self.notifier.vs_changed(state.spec, False, stopping=True)
        if self.error is None:
            if self.release:
                self._report(await self._clear(), "clearing")
            else:
                log.info("IPVS: keeping the virtual servers (--dont-release-ipvs)")
        self.ipvs.close()
        await self.notifier.close()

    # -- state ------------------------------------------------------------------------------

    def _build(self, config: Config, previous: LvsTable | None) -> None:
        from vrrpd.check import CheckerSet  # noqa: PLC0415
        from vrrpd.io.watch import watch_files  # noqa: PLC0415
        from vrrpd.runtime.lvs_table import LvsTable  # noqa: PLC0415

        checkers = CheckerSet(config.virtual_servers, self._on_change, notifier=self.notifier,
                              file_watcher=watch_files)  # fmt: skip
        if previous is not None:
            _carry_over(checkers, previous)
        self.checkers = checkers
        self.table = LvsTable(config, checkers.states(), previous)
        for event in self.table.start():
            self._announce(event)

    def _on_change(self, change: RsChange) -> None:
        """A checker's verdict (called in the checker's task, on the daemon's loop)."""
        if self.table is None:
            return
        event = self.table.update(change)
        if event is not None:
            self._announce(event)
        self._dirty.set()

    def _announce(self, event: QuorumEvent) -> None:
        for line in event.lines:
            log.info(line)
        self.notifier.vs_changed(event.vs, event.up)

    async def _watch_addresses(self) -> None:
        while True:
            await asyncio.sleep(HA_SUSPEND_POLL_S)
            self._suspend_checks()

    def _suspend_checks(self) -> None:
        """keepalived `ha_suspend`: a virtual server's checkers pause while its address is not
        configured here (on a VRRP backup, say). Only address-based virtual servers have one."""
        from vrrpd.io.ipvs import address_is_local  # noqa: PLC0415

        if self.checkers is None:
            return
        for vs in self.config.virtual_servers:
            if vs.ha_suspend and vs.address is not None:
                self.checkers.suspend(vs, not address_is_local(vs.address))

    # -- IPVS -------------------------------------------------------------------------------

    async def _apply_loop(self) -> None:
        while not self._stopping:
            await self._dirty.wait()
            self._dirty.clear()
            if not self._stopping:
                await self._apply()

    async def _apply(self) -> None:
        assert self.table is not None
        try:
            changes = await self.ipvs.apply(self.table.services())
        except IoError as exc:  # the dump failed: try again on the next verdict
            self.apply_errors += 1
            log.error(f"IPVS: {exc}")
            return
        self.applies += 1
        if changes:
            self.recent.append(changes)
        self._report(changes, "applying")

    async def _clear(self) -> Changes | None:
        try:
            return await self.ipvs.clear()
        except IoError as exc:
            self.apply_errors += 1
            log.error(f"IPVS: {exc}")
            return None

    def _report(self, changes: Changes | None, doing: str) -> None:
        if changes is None:
            return
        for error in changes.errors:
            self.apply_errors += 1
            log.error(f"IPVS: {error}")
        if changes.added or changes.edited or changes.removed:
            log.debug(
                f"IPVS {doing}: added {changes.added}, edited {changes.edited}, "
                f"removed {changes.removed}"
            )

    # -- plumbing ---------------------------------------------------------------------------

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        return _spawn(self.runtime, coro)

    def _fifo_write(self, line: str) -> None:
        """keepalived writes the LVS lines to `notify_fifo` and `lvs_notify_fifo`."""
        executor = self.runtime.executor
        if executor is not None:
            executor.notifier.fifo_line(line, "lvs")


async def _open(ipvs: Ipvs) -> str | None:
    """Open IPVS; why not (logged with keepalived's line) on a kernel without it."""
    try:
        await ipvs.open()
    except IoError as exc:
        error = str(exc).removeprefix("IPVS: ")
        log.error(f"IPVS: Can't initialize ipvs: {error}")
        return error
    return None


def _spawn(runtime: Runtime, coro: object) -> asyncio.Task[None]:
    if runtime.tasks is not None:
        return runtime.tasks.create_task(coro)  # type: ignore[arg-type]
    return asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _carry_over(checkers: CheckerSet, previous: LvsTable) -> None:
    """keepalived `migrate_checkers`: a real server that survives a reload keeps its state, so
    the new checkers neither re-add a dead server nor drop a live one (alpha or not). A
    FILE_CHECK keeps what its file says now: its state is read, not carried."""
    from vrrpd.config.lvsmodel import CheckerKind  # noqa: PLC0415
    from vrrpd.runtime.lvs_table import rs_key, vs_key  # noqa: PLC0415

    for server in checkers.servers:
        old_vs = previous.vs.get(vs_key(server.vs))
        old = old_vs.servers.get(rs_key(server.rs)) if old_vs is not None else None
        if old is None:
            continue
        for checker in server.state.checkers:
            if checker.spec.kind is not CheckerKind.FILE_CHECK:
                checker.is_up = old.alive
        server.alive = server.state.alive


class SyncDaemonService:
    """`name = "lvs_syncd"`: keepalived `lvs_sync_daemon` (global_defs)."""

    name = "lvs_syncd"

    def __init__(self, runtime: Runtime) -> None:
        from vrrpd.io.ipvs import Ipvs  # noqa: PLC0415

        self.runtime = runtime
        self.spec: LvsSyncDaemonSpec | None = runtime.config.global_defs.lvs_sync_daemon
        self.ipvs = Ipvs()
        self.running: set[int] = set()  # IP_VS_STATE_* of the daemons started here
        self.wanted: set[int] = set()
        self.error: str | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.error = await _open(self.ipvs)
        if self.error is not None:
            return
        if self.runtime.executor is not None:
            self.runtime.executor.state_listeners.append(self._on_state)
        self._task = self._spawn(self._loop())
        self._follow(self.runtime.config)

    async def reload(self, config: Config) -> None:
        if self.error is None and config.global_defs.lvs_sync_daemon != self.spec:
            await self._stop_all()  # a changed interface, id or group: restart the daemons
            self.spec = config.global_defs.lvs_sync_daemon
        self._follow(config)

    async def stop(self) -> None:
        executor = self.runtime.executor
        if executor is not None and self._on_state in executor.state_listeners:
            executor.state_listeners.remove(self._on_state)
        await _cancel(self._task)
        self._task = None
        await self._stop_all()
        self.ipvs.close()

    def _follow(self, config: Config) -> None:
        """The wanted daemons from the named instance's current state (it may have changed
        before this service started listening: the engine starts first)."""
        from vrrpd.io.ipvs import IP_VS_STATE_BACKUP, IP_VS_STATE_MASTER  # noqa: PLC0415

        spec = self.spec
        if spec is None or spec.instance is None:
            self.wanted = {IP_VS_STATE_MASTER, IP_VS_STATE_BACKUP} if spec else set()
        elif config.instance(spec.instance) is None:
            log.error(f"{spec.location}: lvs_sync_daemon: no vrrp_instance "
                      f"{spec.instance}; the sync daemon is not started")  # fmt: skip
            self.wanted = set()
        else:
            inst = self.runtime.engine.instances.get(spec.instance)
            self._on_state(spec.instance, inst.state if inst is not None else State.INIT)
            return
        self._dirty.set()

    def _on_state(self, instance: str, state: State) -> None:
        """An executor state listener (consumer task): record, and wake the task."""
        from vrrpd.io.ipvs import IP_VS_STATE_BACKUP, IP_VS_STATE_MASTER  # noqa: PLC0415

        if self.spec is None or instance != self.spec.instance:
            return
        self.wanted = {IP_VS_STATE_MASTER if state is State.MASTER else IP_VS_STATE_BACKUP}
        self._dirty.set()

    async def _loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            for state in sorted(self.running - self.wanted):  # the kernel holds one of each
                await self._switch(state, False)
            for state in sorted(self.wanted - self.running):
                await self._switch(state, True)

    async def _switch(self, state: int, start: bool) -> None:
        from vrrpd.io.ipvs import SyncDaemon  # noqa: PLC0415

        spec = self.spec
        if spec is None:
            return
        inst = self.runtime.config.instance(spec.instance) if spec.instance else None
        sync_id = spec.sync_id if spec.sync_id is not None else inst.vrid if inst else 0
        daemon = SyncDaemon(state, spec.interface, sync_id, spec.maxlen, spec.port, spec.ttl,
                            spec.group)  # fmt: skip
        try:
            await self.ipvs.sync_daemon(start, daemon)
        except IoError as exc:
            log.error(f"{exc}")
            return
        (self.running.add if start else self.running.discard)(state)
        verb = "Starting" if start else "Stopping"
        log.info(f"IPVS: {verb} {daemon.state_name} sync daemon on {spec.interface}, "
                 f"syncid {sync_id}")  # fmt: skip

    async def _stop_all(self) -> None:
        self.wanted = set()
        for state in sorted(self.running):
            await self._switch(state, False)

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        return _spawn(self.runtime, coro)


def build(runtime: Runtime) -> list[LvsService | SyncDaemonService]:
    """The LVS service when the configuration has virtual servers (and -P did not drop them);
    the sync daemon with `lvs_sync_daemon` where VRRP instances run (not under -C)."""
    config = runtime.config
    services: list[LvsService | SyncDaemonService] = []
    if config.virtual_servers:
        services.append(LvsService(runtime))
    if config.global_defs.lvs_sync_daemon is not None and config.instances:
        services.append(SyncDaemonService(runtime))
    return services
