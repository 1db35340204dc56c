"""The running daemon: one asyncio loop, one consumer task feeding the engine, one timer.

Every input (datagrams, netlink link events, timer ticks, signals) goes through one bounded
queue to the single consumer, which calls the pure engine with `now = loop.time()` and hands
the returned actions to the executor. After each input the one `call_at` timer is re-armed to
`engine.next_deadline()` (aioquic's adapter shape; ../../DESIGN.md "How one advert travels").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog

from vrrpd import __version__
from vrrpd.config.loader import LoadResult, check_config
from vrrpd.config.model import Config
from vrrpd.core.actions import Action, DelVips
from vrrpd.core.engine import Engine
from vrrpd.core.inputs import LinkState
from vrrpd.errors import DropReason
from vrrpd.io.errors import IoError
from vrrpd.io.files import FileSource
from vrrpd.io.monitor import AddrChange, LinkMonitor
from vrrpd.io.netlink import LinkInfo, Netlink
from vrrpd.io.notify import Notifier
from vrrpd.io.rawsock import SocketPool
from vrrpd.io.sdnotify import sd_notify
from vrrpd.io.timerfd import TimerFd
from vrrpd.proto.advert import Datagram
from vrrpd.runtime.dumps import (
    DEFAULT_STATS,
    DUMP_SIGNALS,
    dump_path,
    format_stats,
    write_atomic,
    write_dump,
)
from vrrpd.runtime.executor import Executor, Fault
from vrrpd.runtime.logs import setup_logging
from vrrpd.runtime.reloader import Reloader
from vrrpd.runtime.services import Service, build_services
from vrrpd.runtime.vmacs import VmacRuntime, vmac_config

log = structlog.get_logger("vrrpd")

QUEUE_MAX = 4096
MAX_RX_AGE_S = 1.0  # an older kernel timestamp means a clock step: use the loop's time
DEFAULT_PID_FILE = "/run/vrrpd.pid"
DEFAULT_VRRP_PID_FILE = "/run/vrrpd_vrrp.pid"


class _Tick:
    """The timer fired."""


class _Stop:
    """SIGTERM / SIGINT."""


class _Stats:
    """SIGUSR2 (keepalived STATS) or SIGRTMAX-1 (STATS_CLEAR: dump, then zero the counters)."""

    def __init__(self, clear: bool) -> None:
        self.clear = clear


class _Reload:
    """SIGHUP (keepalived RELOAD): runtime/reloader.py."""


class _Dump:
    """SIGUSR1 (keepalived DATA, `kind` "data") or SIGRTMIN+2 (JSON, "json")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Call:
    """Run `fn(now)` in the consumer task, the one place engine state changes.

    Trackers, the control socket and reload hand their engine calls over this way; whatever
    `fn` returns that is a list of actions is executed, and `done` (if any) gets the result.
    """

    fn: Callable[[float], Any]
    done: asyncio.Future[Any] | None = None


TICK, STOP, RELOAD = _Tick(), _Stop(), _Reload()
Input = (
    list[Datagram]  # what one socket wake-up read (RawSocket.start)
    | LinkInfo
    | AddrChange
    | _Tick
    | _Stop
    | _Stats
    | _Dump
    | _Reload
    | Call
)


class Runtime:
    """Wires the engine to the IO adapters for one configuration."""

    def __init__(
        self,
        config: Config,
        *,
        detail: bool,
        release_vips: bool = True,
        pid_file: str | None = None,
        metrics_listen: str | None = None,
        release_ipvs: bool = True,
        reload_source: Callable[[], LoadResult] | None = None,
        reload_filter: Callable[[Config], Config] | None = None,
    ) -> None:
        self.config = config
        # SIGHUP re-reads the file the daemon started from (runtime/reloader.py); the filter
        # applies what the command line did to the first read (-P / -C).
        self.reload_source = reload_source
        self.reload_filter = reload_filter or (lambda new: new)
        self.reloader = Reloader(self)
        self._started_socks: set[int] = set()
        self.release_ipvs = release_ipvs  # `-I/--dont-release-ipvs` (runtime.lvs)
        self.pid_file = pid_file  # dumps are written beside it (dumps.dump_path)
        self.metrics_listen = metrics_listen  # `--metrics-listen ADDR:PORT` (runtime.metrics)
        self.stats_file = dump_path(
            config.global_defs.stats_dump_file, DEFAULT_STATS, pid_file, "stats"
        )
        self.engine = Engine(vmac_config(config))
        self.vmacs: VmacRuntime | None = None
        self.detail = detail
        self.release_vips = release_vips
        self.queue: asyncio.Queue[Input] = asyncio.Queue(QUEUE_MAX)
        self.pool = SocketPool()
        self.queue_drops = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timerfd: TimerFd | None = None
        self._armed_at: float | None = None
        self._tick_pending = False
        self._last_rx_now = 0.0
        self.link_listeners: list[Callable[[LinkInfo], None]] = []
        self.services: list[Service] = []
        self.tasks: asyncio.TaskGroup | None = None
        self.executor: Executor | None = None

    def submit(self, fn: Callable[[float], Any]) -> None:
        """Queue `fn(now)` for the consumer; its returned actions are executed."""
        self._put(Call(fn))

    async def call(self, fn: Callable[[float], Any]) -> Any:
        """Queue `fn(now)` and wait for what it returns (status queries, control commands)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put(Call(fn, done))
        return await done

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        netlink = Netlink()
        self.vmacs = VmacRuntime.build(self.config, netlink)
        monitor = LinkMonitor(self._put)
        try:
            self._timerfd = TimerFd(loop, self._fire)
        except (OSError, AttributeError) as exc:
            log.warning(f"no timerfd ({exc}); timers fall back to millisecond precision")
        async with asyncio.TaskGroup() as tasks:
            self.tasks = tasks
            notifier = Notifier(self.config, tasks.create_task)
            executor = Executor(self.pool, netlink, notifier, tasks.create_task, self.detail)
            self.executor = executor
            try:
                await self._startup(loop, monitor, netlink, executor)
                sd_notify("READY=1")  # sockets open, instances started, services listening
                await self._consume(loop, executor)
            finally:
                await self._stop_services()
                monitor.close()
                if self._timerfd is not None:
                    self._timerfd.close()
                self.pool.close()
                executor.close()
                notifier.close()
        await self.vmacs.remove_all()  # after the VIPs on them are gone
        await netlink.close()
        log.info(f"Stopped vrrpd v{__version__}")
        return 0

    async def _startup(
        self,
        loop: asyncio.AbstractEventLoop,
        monitor: LinkMonitor,
        netlink: Netlink,
        executor: Executor,
    ) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._put, STOP)
        loop.add_signal_handler(signal.SIGUSR2, self._put, _Stats(clear=False))
        loop.add_signal_handler(signal.SIGRTMAX - 1, self._put, _Stats(clear=True))
        loop.add_signal_handler(signal.SIGHUP, self._put, RELOAD)
        for signum, kind in DUMP_SIGNALS.items():
            loop.add_signal_handler(signum, self._put, _Dump(kind))
        assert self.vmacs is not None
        faults = await self.vmacs.create()
        executor.announce_dev.update(self.vmacs.announce_dev)
        monitor.start(loop)  # reports every link into the queue before anything else
        now = loop.time()
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if isinstance(item, LinkInfo):
                self.on_link(item, now)
        # keepalived removes configured VIPs left by an unclean exit before starting.
        for inst in self.engine.config.instances:  # as run: `use_vmac` VIPs live on the VMAC
            with contextlib.suppress(IoError, OSError):
                await netlink.del_vips(inst.interface or "", inst.vips + inst.excluded_vips)
        faults += self.open_sockets(loop)
        actions: list[Action] = []
        for name, key, reason in faults:
            actions += self.engine.set_fault(name, key, reason, now)
        services = build_services(self)
        self._hold_for_first_results(services)
        actions += self.engine.start(now)
        await self._execute(executor, actions)
        for service in services:
            await service.start()
            self.services.append(service)
        self._rearm(loop)

    def _hold_for_first_results(self, services: list[Service]) -> None:
        """Instances tracking a weight-0 script wait, silently, for its first result
        (keepalived 2.2.7); the trackers service knows which (`initial_faults`)."""
        for service in services:
            initial = getattr(service, "initial_faults", None)
            for name, key, reason in initial() if initial is not None else []:
                inst = self.engine.instances.get(name)
                if inst is not None:
                    inst.hold(key, reason)

    async def _stop_services(self) -> None:
        """Last started, first stopped; a failing stop is logged, never blocks the others."""
        while self.services:
            service = self.services.pop()
            try:
                await service.stop()
            except Exception as exc:  # shutdown must go on
                log.error(f"stopping {service.name} failed: {exc!r}")

    def open_sockets(self, loop: asyncio.AbstractEventLoop) -> list[Fault]:
        """One socket per (interface, family); an instance whose socket fails goes to FAULT.
        Sockets already reading are left alone, so a reload opens only new ones."""
        faults: list[Fault] = []
        started = self._started_socks
        for inst in self.engine.config.instances:
            iface = inst.interface or ""
            group = None if inst.unicast else inst.mcast_group
            try:
                sock = self.pool.get(iface, inst.family, group)
            except (IoError, OSError) as exc:
                log.error(f"({inst.name}) cannot open VRRP socket on {iface}: {exc}")
                faults.append((inst.name, "socket", f"socket on {iface}: {exc}"))
                continue
            if id(sock) not in started:
                started.add(id(sock))
                sock.start(loop, self._put)
        return faults

    def close_unused_sockets(self) -> None:
        """After a reload's actions ran (a removed MASTER's priority-0 advert went out on its
        socket): the sockets of (interface, family) pairs no instance uses any more."""
        keys = {(inst.interface or "", inst.family) for inst in self.engine.config.instances}
        for sock in self.pool.retain(keys):
            self._started_socks.discard(id(sock))
            log.info(f"closed the VRRP socket on {sock.interface or 'any'} (IPv{sock.family})")

    async def _consume(self, loop: asyncio.AbstractEventLoop, executor: Executor) -> None:
        """Drain everything queued per wake-up, then re-arm the timer once: at 2000 adverts/s
        a task switch and a timer syscall per packet would cost more than the engine itself."""
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            for item in batch:
                if isinstance(item, _Stop):
                    await self._stop(loop, executor)
                    return
                actions = self._dispatch(item, loop.time())
                if actions:
                    await self._execute(executor, actions)
            self._rearm(loop)

    def _dispatch(self, item: Input, now: float) -> list[Action]:
        match item:
            case list():
                return self._receive(item, now)
            case LinkInfo():
                for listener in self.link_listeners:
                    listener(item)
                return self.on_link(item, now)
            case AddrChange(added=False):
                return self.engine.on_address_removed(item.interface, item.address.ip, now)
            case _Tick():
                self._tick_pending = False
                return self.engine.on_timer(now)
            case _Stats():
                self._write_stats(item.clear)
            case _Dump():
                write_dump(self, item.kind, now)
            case _Reload():
                self.reloader.request()
            case Call():
                return self._run_call(item, now)
        return []

    def _receive(self, batch: list[Datagram], now: float) -> list[Action]:
        """What one socket wake-up read (RawSocket.start), in arrival order."""
        offset = time.time() - now
        receive, arrival = self.engine.receive_datagram, self._arrival
        actions: list[Action] = []
        for dgram in batch:
            actions += receive(dgram, arrival(dgram, now, offset))
        return actions

    def _arrival(self, dgram: Datagram, now: float, offset: float | None = None) -> float:
        """When the advert arrived, on the loop's clock (RFC 5798 6.4.2: the Master_Down_Timer
        restarts at the advert's arrival, not when a busy consumer got round to it).

        The kernel stamps CLOCK_REALTIME; `offset`, `time.time() - now`, converts it (read once
        per batch: a batch is read within microseconds). The result is clamped to [the last time
        given to the engine, now], so the engine never sees time go back and a clock step cannot
        date an advert in the future or far in the past.
        """
        if dgram.rx_at > 0.0:
            at = dgram.rx_at - (time.time() - now if offset is None else offset)
            if now - at < MAX_RX_AGE_S:
                now = max(self._last_rx_now, min(now, at))
        self._last_rx_now = now
        return now

    def on_link(self, info: LinkInfo, now: float) -> list[Action]:
        """A link report; a VMAC borrows its parent's addresses, so it is re-reported with it."""
        if self.vmacs is None:
            return self.engine.on_link(_link_state(info), now)
        actions = self.engine.on_link(_link_state(self.vmacs.link_state(info)), now)
        for name in self.vmacs.vmacs_of(info.interface):
            known = self.vmacs.links.get(name)
            if known is not None:
                actions += self.engine.on_link(_link_state(self.vmacs.link_state(known)), now)
        return actions

    def _run_call(self, item: Call, now: float) -> list[Action]:
        try:
            result = item.fn(now)
        except Exception as exc:  # a bad request must not stop the daemon
            log.error(f"internal call failed: {exc!r}")
            if item.done is not None and not item.done.done():
                item.done.set_exception(exc)
            return []
        if item.done is not None and not item.done.done():
            item.done.set_result(result)
        return result if isinstance(result, list) else []

    async def _stop(self, loop: asyncio.AbstractEventLoop, executor: Executor) -> None:
        """keepalived STOP: masters send priority 0 and release (unless -V), then STOP notifies."""
        log.info("Stopping")
        sd_notify("STOPPING=1")
        await self.reloader.stop()
        await self._stop_services()  # no tracker or control input after this point
        actions = self.engine.shutdown(loop.time())
        if not self.release_vips:
            actions = [a for a in actions if not isinstance(a, DelVips)]
        await self._execute(executor, actions)

    def _write_stats(self, clear: bool) -> None:
        try:
            write_atomic(self.stats_file, format_stats(self.engine.status()))
        except OSError as exc:
            log.error(f"Unable to write stats file {self.stats_file}: {exc.strerror}")
        if clear:
            for inst in self.engine.instances.values():
                inst.stats.clear()

    async def _execute(self, executor: Executor, actions: list[Action]) -> None:
        """Run actions; IO failures come back as faults, whose actions run in turn."""
        while actions:
            faults = await executor.run(actions)
            now = asyncio.get_running_loop().time()
            actions = []
            for name, key, reason in faults:
                actions += self.engine.set_fault(name, key, reason, now)

    def _rearm(self, loop: asyncio.AbstractEventLoop) -> None:
        at = self.engine.next_deadline()
        if self._timerfd is not None:
            want = None if self._tick_pending else at
            if want != self._armed_at:  # most adverts leave the earliest deadline unchanged
                self._timerfd.arm(want)
                self._armed_at = want
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if at is not None and not self._tick_pending:
            self._timer = loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = None
        self._tick_pending = True
        self._put(TICK)

    def _put(self, item: Any) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.queue_drops += len(item) if isinstance(item, list) else 1
            if isinstance(item, list):
                self.engine.unmatched[DropReason.QUEUE_FULL.value] = self.queue_drops
            elif isinstance(item, _Tick | _Stop | Call):
                asyncio.get_running_loop().call_soon(self._put, item)  # never lose these


def _link_state(info: LinkInfo) -> LinkState:
    return LinkState(info.interface, info.ifindex, info.up, info.addr4, info.addr6)


def run_daemon(
    options: Any, config: Config, reload_filter: Callable[[Config], Config] | None = None
) -> int:
    """`vrrpd -f CONF [-n] [-l] [-D] [-p PID] [-r PID]`: keepalived's VRRP process."""
    setup_logging(
        console=options.log_console,
        detail=options.log_detail,
        log_file=options.log_file,
        syslog=not options.no_syslog,
        facility=options.log_facility,
        json_format=getattr(options, "log_format", "text") == "json",
    )
    # Absolute before the fork chdirs to "/"; dumps are written beside the -p file.
    pid_file = os.path.abspath(options.pid_file) if options.pid_file else None
    pid_files = [
        pid_file or DEFAULT_PID_FILE,
        os.path.abspath(options.vrrp_pid_file or DEFAULT_VRRP_PID_FILE),
    ]
    if running_pid(pid_files) is not None:
        return 1
    if not options.dont_fork:
        _daemonize()
    for path in pid_files:
        try:
            with open(path, "w") as fh:
                fh.write(f"{os.getpid()}\n")
        except OSError as exc:
            log.error(f"Unable to write pid file {path}: {exc.strerror}")
            return 1
    log.info(f"Starting vrrpd v{__version__}")
    try:
        runtime = Runtime(
            config,
            detail=options.log_detail,
            release_vips=not options.dont_release_vrrp,
            pid_file=pid_file,
            metrics_listen=getattr(options, "metrics_listen", None),
            release_ipvs=not getattr(options, "dont_release_ipvs", False),
            reload_source=partial(
                check_config, options.config_file, FileSource(), options.config_id
            ),
            reload_filter=reload_filter,
        )
        return asyncio.run(runtime.run())
    except IoError as exc:
        log.error(f"vrrpd cannot run: {exc}")
        return 1
    finally:
        sd_notify("STOPPING=1")
        for path in pid_files:
            with contextlib.suppress(OSError):
                os.unlink(path)


def running_pid(pid_files: list[str]) -> int | None:
    """keepalived refuses to start while a pid file names a live daemon ("daemon is already
    running"); a stale file (no such process, or a reused PID that is no vrrpd) is taken over."""
    for path in pid_files:
        try:
            with open(path) as fh:
                pid = int(fh.read().split()[0])
            os.kill(pid, 0)
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"vrrpd" not in fh.read():
                    continue
        except (OSError, ValueError, IndexError):
            continue
        if pid != os.getpid():
            log.error("daemon is already running")
            print(f"vrrpd: daemon is already running (pid {pid} in {path})", file=sys.stderr)
            return pid
    return None


def _daemonize() -> None:
    """The classic double fork: no controlling terminal, stdio on /dev/null."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
