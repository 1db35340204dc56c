"""SIGHUP: keepalived's RELOAD in the running daemon (keepalived.md 3.2 "HUP (RELOAD)").

The consumer hands every `_Reload` input (SIGHUP; vrrpctl `reload` sends SIGHUP) to
`Reloader.request()`. One reload runs at a time, in its own task; SIGHUPs that arrive meanwhile
make one more reload afterwards.

1. `Reloading ...`. The file the daemon was started with is read and checked in a worker
   thread, so the consumer keeps serving adverts. With any error the running configuration
   stays: each problem is logged with its file:line:col, then `Reload aborted ...` (keepalived
   2.2.7 exits on such a file unless `reload_check_config` is set; vrrpd always checks first).
2. VMACs of new `use_vmac` instances are created and their links read, outside the consumer.
3. One step in the consumer, the one place engine state changes: the new VMAC links,
   `engine.reload` (masters advertise at once, instances matched as keepalived does, see
   core/reload.py), sockets for new (interface, family) pairs, the notifier reloaded (FIFOs
   closed and reopened) with the notify scripts of removed instances kept for their DELETED /
   FAULT notify. The actions run before anything else is read from the queue.
4. Sockets of (interface, family) pairs nothing uses any more are closed, and VMACs nothing
   uses any more removed, after their addresses. Services with a `reload(config)` hook get the
   new configuration (trackers restart their scripts keeping their results, LVS diffs its
   table); a service the new configuration needs and that is not running yet starts. The
   control socket stays. `Reload complete`, `Reload finished in N usec`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import TYPE_CHECKING

import structlog

from vrrpd.config.model import Config, InstanceConfig
from vrrpd.core.actions import Action
from vrrpd.io.errors import IoError
from vrrpd.io.netlink import LinkInfo
from vrrpd.io.sdnotify import reloading, sd_notify
from vrrpd.runtime.dumps import DEFAULT_STATS, dump_path
from vrrpd.runtime.services import build_services
from vrrpd.runtime.vmacs import vmac_config

if TYPE_CHECKING:
    from vrrpd.config.loader import LoadResult
    from vrrpd.runtime.daemon import Runtime
    from vrrpd.runtime.executor import Fault

log = structlog.get_logger("vrrpd")


class Reloader:
    """Runs reloads for one `Runtime` (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.completed = 0
        self.aborted = 0
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def request(self) -> None:
        """A SIGHUP: start a reload, or one more after the one running."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        if self.runtime.tasks is not None:
            self._task = self.runtime.tasks.create_task(self._run())

    async def stop(self) -> None:
        """Daemon stop: a reload still running is abandoned (it waits on the consumer)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        sd_notify(reloading())
        try:
            while True:
                self._again = False
                try:
                    await self._reload_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a reload must never take the daemon down
                    self.aborted += 1
                    log.error(f"Reload failed: {exc!r}")
                if not self._again:
                    return
        finally:
            sd_notify("READY=1")  # done, aborted or failed: the daemon runs on either way

    async def _reload_once(self) -> None:
        rt = self.runtime
        log.info("Reloading ...")
        started = time.monotonic()
        if rt.reload_source is None:
            log.error("Reload aborted: the daemon was not started from a configuration file")
            self.aborted += 1
            return
        config = _checked(await asyncio.to_thread(rt.reload_source))
        if config is None:
            self.aborted += 1
            return
        config = rt.reload_filter(config)
        log.info("Reloading")
        before = set(rt.vmacs.manager.vmacs) if rt.vmacs is not None else set()
        faults = await self._create_vmacs(config)
        links = await self._vmac_links(before)
        await rt.call(lambda now: self._apply(config, links, faults, now))
        await rt.call(lambda now: None)  # the reload's actions have run
        await rt.call(lambda now: rt.close_unused_sockets())
        await self._remove_vmacs(config)
        await self._reload_services(config)
        self.completed += 1
        log.info("Reload complete")
        log.info(f"Reload finished in {int((time.monotonic() - started) * 1e6)} usec")

    def _apply(
        self, config: Config, links: list[LinkInfo], faults: list[Fault], now: float
    ) -> list[Action]:
        """In the consumer: the engine, sockets and notifier move onto `config` together."""
        rt = self.runtime
        assert rt.executor is not None and rt.vmacs is not None
        actions: list[Action] = []
        for info in links:
            actions += rt.on_link(info, now)
        notifier = rt.executor.notifier
        before = dict(notifier.specs)
        old_names = set(rt.engine.instances)
        actions += rt.engine.reload(vmac_config(config), now)
        rt.config = config
        g = config.global_defs
        rt.stats_file = dump_path(g.stats_dump_file, DEFAULT_STATS, rt.pid_file, "stats")
        for name, key, reason in faults + rt.open_sockets(asyncio.get_running_loop()):
            if name in rt.engine.instances:
                actions += rt.engine.set_fault(name, key, reason, now)
        notifier.reload(config)
        for name in old_names - set(rt.engine.instances):  # their DELETED / FAULT notify
            spec = before.get(("INSTANCE", name))
            if spec is not None:
                notifier.specs.setdefault(("INSTANCE", name), spec)
        if g.fifo_write_states_on_reload:
            _write_states(rt, old_names)
        dev = {i.name: _vmac(i) for i in config.instances if _vmac(i) in rt.vmacs.parents}
        rt.vmacs.announce_dev = dev
        rt.executor.announce_dev.clear()
        rt.executor.announce_dev.update(dev)
        return actions

    async def _create_vmacs(self, config: Config) -> list[Fault]:
        """`use_vmac` instances whose VMAC does not exist yet get one (as at start)."""
        vmacs = self.runtime.vmacs
        assert vmacs is not None
        fresh = tuple(i for i in config.instances if _vmac(i) not in ("", *vmacs.manager.vmacs))
        if not fresh:
            vmacs.config = config
            return []
        vmacs.config = dataclasses.replace(config, instances=fresh)
        try:
            return await vmacs.create()
        finally:
            vmacs.config = config

    async def _vmac_links(self, before: set[str]) -> list[LinkInfo]:
        """The links of the VMACs just created, read again now that they are known as VMACs:
        netlink may have reported one while it was being made, without its parent's addresses,
        and new instances must start on it as at boot (with an advert source)."""
        rt = self.runtime
        assert rt.executor is not None and rt.vmacs is not None
        infos: list[LinkInfo] = []
        for name in set(rt.vmacs.manager.vmacs) - before:
            with contextlib.suppress(IoError, OSError):
                infos.append(await rt.executor.netlink.link_info(name))
        return infos

    async def _remove_vmacs(self, config: Config) -> None:
        """keepalived deletes a VMAC on reload once no instance uses it."""
        vmacs = self.runtime.vmacs
        assert vmacs is not None
        used = {_vmac(i) for i in config.instances}
        for name in [n for n in vmacs.manager.vmacs if n not in used]:
            try:
                await vmacs.manager.remove(name)
            except (IoError, OSError) as exc:
                log.error(f"cannot remove VMAC {name}: {exc}")
            vmacs.parents.pop(name, None)
            vmacs.links.pop(name, None)

    async def _reload_services(self, config: Config) -> None:
        """Reload hooks first, then whatever the new configuration needs that is not running."""
        rt = self.runtime
        running = {s.name for s in rt.services}
        for service in list(rt.services):
            hook = getattr(service, "reload", None)
            if not callable(hook):
                continue
            try:
                await hook(config)
            except Exception as exc:  # one service must not stop the others
                log.error(f"reloading {service.name} failed: {exc!r}")
        for service in build_services(rt):
            if service.name in running:
                continue
            try:
                await service.start()
            except Exception as exc:
                log.error(f"starting {service.name} failed: {exc!r}")
                continue
            rt.services.append(service)


def _write_states(rt: Runtime, kept: set[str]) -> None:
    """keepalived `fifo_write_vrrp_states_on_reload`: the state line of every instance that
    was already running, then every sync group's, to the reopened FIFOs, as if each had just
    entered the state it is in (a new instance writes its own line when it starts)."""
    assert rt.executor is not None
    notifier = rt.executor.notifier
    for name, inst in rt.engine.instances.items():
        if name not in kept:
            continue
        notifier.fifo_line(f'INSTANCE "{name}" {inst.state.value} {inst.effective_priority}\n',
                           "vrrp")  # fmt: skip
    for name, group in rt.engine.groups.items():
        notifier.fifo_line(f'GROUP "{name}" {group.state.value} 0\n', "vrrp")


def _checked(result: LoadResult) -> Config | None:
    """The new configuration, or None after logging why the running one stays."""
    for problem in result.problems:
        (log.error if problem in result.errors else log.warning)(str(problem))
    if result.config is not None and not result.errors:
        return result.config
    count = len(result.errors)
    log.error(
        f"Reload aborted: {count} configuration error{'s' if count != 1 else ''}"
        " - keeping the running configuration"
    )
    return None


def _vmac(inst: InstanceConfig) -> str:
    return inst.vmac.name if inst.vmac is not None else ""
