"""All the health checkers of a configuration (keepalived's `Keepalived_healthcheckers`).

`CheckerSet(config.virtual_servers, on_change)` runs each checker as its own task under one
TaskGroup: a random warm-up delay up to `warmup`, then attempts paced by `delay_loop` and
`delay_before_retry` (state.py). Attempts are bounded (`connect_timeout` for network checkers,
per url for HTTP, `misc_timeout` for MISC), so a server that accepts and never answers, or a
script that hangs, only ever costs its own checker a failed attempt; no checker blocks the loop
or another checker. A probe that raises counts as a failure, never as a dead task.

FILE_CHECK runs no attempts: the set watches the track files its FILE_CHECKs name through the
file watcher it is given (`file_watcher`, the runtime passes `io.watch.watch_files`: the same
inotify watch as VRRP's `track_file`), takes their values at construction (so `states()` is
right before any check ran) and applies every change at once (`file_value`).

When a real server changes (alive: none of its checkers down; or a dynamic weight), the
set logs keepalived's line (`Adding service [rs]:tcp:80 to VS [vs]:tcp:80`, `Removing service
... from VS ...`, `Enabling`/`Disabling ... of VS ...` with `inhibit_on_failure`), runs the real
server's notify script and FIFO line through `LvsNotifier`, then calls `on_change(RsChange)`.
The state before any change is in `states()`: alive unless a checker is in `alpha` mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from vrrpd.check.http import http_check
from vrrpd.check.icmp import ping_check
from vrrpd.check.net import Attempt, failure, raise_if_cancelled
from vrrpd.check.notify import LvsNotifier
from vrrpd.check.probes import dns_check, misc_check, smtp_check, tcp_check
from vrrpd.check.state import CheckerState, RealServerState, Verdict, dynamic_weight, file_verdict
from vrrpd.check.tls import TlsContexts
from vrrpd.check.udp import udp_check
from vrrpd.config.lvsmodel import (
    CheckerKind,
    CheckerSpec,
    FileCheckParams,
    HttpParams,
    MiscParams,
    RealServerSpec,
    VirtualServerSpec,
    rs_label,
    vs_label,
)
from vrrpd.config.model import TrackFileSpec

log = structlog.get_logger("vrrpd.check")

Probe = Callable[[CheckerSpec], Awaitable[Attempt]]
PROBES: dict[CheckerKind, Probe] = {
    CheckerKind.TCP_CHECK: tcp_check,
    CheckerKind.SMTP_CHECK: smtp_check,
    CheckerKind.DNS_CHECK: dns_check,
    CheckerKind.PING_CHECK: ping_check,
}


class FileSource(Protocol):
    """What the set needs of a file watcher (`io.watch.FileWatcher` is one): the values read
    at construction, then `report(name, value)` on each change while running."""

    values: dict[str, int]

    def start(self, loop: asyncio.AbstractEventLoop) -> None: ...

    async def run(self) -> None: ...

    def close(self, loop: asyncio.AbstractEventLoop) -> None: ...


FileWatchFactory = Callable[[Sequence[TrackFileSpec], Callable[[str, int], None]], FileSource]


@dataclass(frozen=True, slots=True)
class RsChange:
    """A real server's new state: `up` (in the pool) and its effective `weight`."""

    vs: VirtualServerSpec
    rs: RealServerSpec
    up: bool
    weight: int


OnChange = Callable[[RsChange], None]


@dataclass(slots=True)
class _Server:
    vs: VirtualServerSpec
    rs: RealServerSpec
    state: RealServerState
    alive: bool

    @property
    def labels(self) -> tuple[str, str]:
        return rs_label(self.vs, self.rs), vs_label(self.vs)


class CheckerSet:
    """Runs the checkers of `virtual_servers`; `start()`/`stop()`, `states()`, `suspend()`."""

    def __init__(
        self,
        virtual_servers: Iterable[VirtualServerSpec],
        on_change: OnChange | None = None,
        *,
        notifier: LvsNotifier | None = None,
        rng: random.Random | None = None,
        file_watcher: FileWatchFactory | None = None,
    ) -> None:
        self.servers: list[_Server] = []
        for vs in virtual_servers:
            for rs in vs.real_servers:
                state = RealServerState(rs.weight, [CheckerState(c) for c in rs.checkers])
                self.servers.append(_Server(vs, rs, state, state.alive))
        self.on_change = on_change
        self._own_notifier = notifier is None
        self.notifier = notifier if notifier is not None else LvsNotifier()
        self.rng = rng or random.Random()
        self.suspended: set[str] = set()
        self.tls = TlsContexts()
        self._main: asyncio.Task[None] | None = None
        self.files: FileSource | None = None
        tracked = {p.file.name: p.file for _, c in self.checkers() if (p := _file(c.spec))}
        if tracked and file_watcher is not None:
            self.files = file_watcher(list(tracked.values()), self.file_value)
            for name, value in self.files.values.items():
                self._apply_file(name, value, quiet=True)

    def states(self) -> list[RsChange]:
        """Every real server's current state (the initial one before any check ran)."""
        return [RsChange(s.vs, s.rs, s.alive, s.state.effective_weight) for s in self.servers]

    def checkers(self) -> list[tuple[RsChange, CheckerState]]:
        """Each checker with its real server, for status and statistics."""
        return [
            (RsChange(s.vs, s.rs, s.alive, s.state.effective_weight), c)
            for s in self.servers
            for c in s.state.checkers
        ]

    async def start(self) -> None:
        """Start every checker (each after its random warm-up); returns at once."""
        if self._main is not None:
            return
        for server in self.servers:
            rs, vs = server.labels
            for _ in server.state.checkers:
                log.info(f"Activating healthchecker for service {rs} for VS {vs}")
        loop = asyncio.get_running_loop()
        if self.files is not None:
            self.files.start(loop)
        self._main = loop.create_task(self._run(), name="vrrpd-checkers")

    async def stop(self) -> None:
        """Cancel every checker (killing running MISC scripts); with `omega`, run the notify
        of each real server still up, as keepalived does on shutdown."""
        if self._main is not None:
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
            self._main = None
        if self.files is not None:
            self.files.close(asyncio.get_running_loop())
        for server in self.servers:
            if server.vs.omega and server.alive:
                self.notifier.rs_changed(server.vs, server.rs, False, stopping=True)
        if self._own_notifier:
            await self.notifier.close()

    def suspend(self, vs: VirtualServerSpec, suspended: bool) -> None:
        """keepalived `ha_suspend`: pause a virtual server's checkers while its address is
        not configured on this host (the caller watches the address)."""
        label = vs_label(vs)
        if suspended == (label in self.suspended):
            return
        (self.suspended.add if suspended else self.suspended.discard)(label)
        for server in self.servers:
            if server.vs == vs:
                rs, _ = server.labels
                state = "Deactivating" if suspended else "Activating"
                log.info(f"{state} healthchecker for service {rs} for VS {label}")

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            if self.files is not None:
                tg.create_task(self.files.run())
            for server in self.servers:
                for checker in server.state.checkers:
                    if checker.spec.kind is not CheckerKind.FILE_CHECK:
                        tg.create_task(self._loop(server, checker))

    async def _loop(self, server: _Server, checker: CheckerState) -> None:
        spec = checker.spec
        await asyncio.sleep(self.rng.uniform(0, spec.warmup_s))
        while True:
            if vs_label(server.vs) in self.suspended:
                await asyncio.sleep(spec.delay_loop_s)
                continue
            attempt = await self._attempt(spec)
            raise_if_cancelled()
            await asyncio.sleep(self._apply(server, checker, attempt))

    async def _attempt(self, spec: CheckerSpec) -> Attempt:
        """One bounded attempt; any exception but cancellation is a failed attempt."""
        try:
            if spec.kind is CheckerKind.HTTP_GET:
                return await http_check(spec, spec.connect_timeout_s)
            if spec.kind is CheckerKind.SSL_GET:
                assert isinstance(spec.params, HttpParams)
                tls = self.tls.get(spec.params.ssl)
                return await http_check(spec, spec.connect_timeout_s, tls)
            if spec.kind is CheckerKind.UDP_CHECK:
                return await udp_check(spec, spec.connect_timeout_s)  # a timeout may pass it
            if spec.kind is CheckerKind.MISC_CHECK:
                return await misc_check(spec)  # bounded by misc_timeout
            async with asyncio.timeout(spec.connect_timeout_s):
                return await PROBES[spec.kind](spec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a probe bug or odd socket error must not end the checker
            return failure(exc)

    def _apply(self, server: _Server, checker: CheckerState, attempt: Attempt) -> float:
        """Account one attempt; log, weigh and notify; return the delay to the next one."""
        spec, first = checker.spec, not checker.has_run
        verdict = checker.record(attempt.ok)
        checker.last_detail = attempt.detail
        rs, vs = server.labels
        if not attempt.ok:
            say = log.info if spec.log_all_failures else log.debug
            say(f"{spec.kind.value} attempt on {rs} of VS {vs} failed: {attempt.detail}")
        if verdict.report is not None:
            log.info(report_line(spec, verdict, attempt, rs, vs))
        misc = spec.params
        if attempt.ok and isinstance(misc, MiscParams) and misc.dynamic and attempt.rc is not None:
            configured = server.rs.weight
            self._set_delta(server, checker, dynamic_weight(attempt.rc, configured) - configured)
        if verdict.changed:
            self._update(server)
        elif first and verdict.report == "DOWN" and not server.alive:
            # keepalived confirms an alpha checker's initial DOWN with the notifies
            self.notifier.rs_changed(server.vs, server.rs, False)
        return verdict.delay_s

    def _update(self, server: _Server) -> None:
        alive = server.state.alive
        if alive == server.alive:
            return
        server.alive = alive
        rs, vs = server.labels
        if server.rs.inhibit_on_failure:
            log.info(f"{'Enabling' if alive else 'Disabling'} service {rs} of VS {vs}")
        else:
            verb = "Adding service {} to VS {}" if alive else "Removing service {} from VS {}"
            log.info(verb.format(rs, vs))
        self.notifier.rs_changed(server.vs, server.rs, alive)
        self._emit(server)

    def file_value(self, name: str, value: int) -> None:
        """track file `name` now holds `value` (the file watcher's report)."""
        self._apply_file(name, value, quiet=False)

    def _apply_file(self, name: str, value: int, *, quiet: bool) -> None:
        """Set every FILE_CHECK on track file `name` from `value`; `quiet` at construction
        (nothing runs yet: no log line, notify or callback)."""
        for server, checker, params in self._file_checkers(name):
            verdict = file_verdict(value, params)
            changed = verdict.up != checker.is_up
            checker.is_up, checker.has_run = verdict.up, True
            checker.last_detail = f"track file {name} value {value}"
            if quiet:
                server.state.deltas[server.state.checkers.index(checker)] = verdict.delta
                server.alive = server.state.alive
                continue
            if changed:
                rs, vs = server.labels
                state = "up" if verdict.up else "down"
                log.info(f"FILE_CHECK on service {rs} of VS {vs}: {checker.last_detail} - {state}")
            self._set_delta(server, checker, verdict.delta)
            self._update(server)

    def _file_checkers(self, name: str) -> list[tuple[_Server, CheckerState, FileCheckParams]]:
        return [
            (server, checker, params)
            for server in self.servers
            for checker in server.state.checkers
            if (params := _file(checker.spec)) is not None and params.file.name == name
        ]

    def _set_delta(self, server: _Server, checker: CheckerState, delta: int) -> None:
        """What dynamic `checker` adds to the configured weight."""
        old = server.state.effective_weight
        server.state.deltas[server.state.checkers.index(checker)] = delta
        weight = server.state.effective_weight
        if weight == old:
            return
        rs, vs = server.labels
        active = "" if server.alive else "in"
        log.info(
            f"Changing weight from {old} to {weight} for {active}active service {rs} of VS {vs}"
        )
        self._emit(server)

    def _emit(self, server: _Server) -> None:
        if self.on_change is None:
            return
        change = RsChange(server.vs, server.rs, server.alive, server.state.effective_weight)
        try:
            self.on_change(change)
        except Exception as exc:  # the glue's failure must not stop the checkers
            log.error(f"LVS change handler failed for {rs_label(server.vs, server.rs)}: {exc}")


def _file(spec: CheckerSpec) -> FileCheckParams | None:
    return spec.params if isinstance(spec.params, FileCheckParams) else None


def report_line(spec: CheckerSpec, verdict: Verdict, attempt: Attempt, rs: str, vs: str) -> str:
    """keepalived's log line for a checker's UP or DOWN result."""
    after = f" after {verdict.retries} retries" if verdict.retries else ""
    kind = spec.kind
    if kind is CheckerKind.MISC_CHECK:
        assert isinstance(spec.params, MiscParams)
        head = f"Misc check for [{rs} VS {vs}] by [{spec.params.command.argv[0]}]"
        if verdict.report == "UP":
            return f"{head} succeeded."
        if attempt.detail == "timed out":
            return f"{head} timed out{after}."
        return f"{head} failed{after} ({attempt.detail})."
    if verdict.report == "UP":
        return {
            CheckerKind.TCP_CHECK: f"TCP connection to {rs} success.",
            CheckerKind.SMTP_CHECK: f"Remote SMTP server {rs} succeed on service.",
            CheckerKind.DNS_CHECK: f"DNS_CHECK ({rs}) succeeded.",
            CheckerKind.PING_CHECK: f"ICMP connection to {rs} success.",
            CheckerKind.UDP_CHECK: f"UDP connection to {rs} success.",
        }.get(kind, attempt.detail.replace("{rs}", rs, 1))
    if kind is CheckerKind.PING_CHECK:
        return f"ICMP CHECK on service {rs} of {vs} failed{after}."
    if kind is CheckerKind.DNS_CHECK:
        return f"DNS_CHECK ({rs}) {attempt.detail}{after}"
    name = "HTTP_CHECK" if kind in (CheckerKind.HTTP_GET, CheckerKind.SSL_GET) else kind.value
    return f"{name} on service {rs} failed{after}."
