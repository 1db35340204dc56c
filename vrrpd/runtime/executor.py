"""Carries out the core's actions, in order, against the IO adapters.

Failures never propagate as exceptions: a VIP that cannot be added or a socket that cannot send
is logged with its cause and returned as a fault for the engine (the instance goes to FAULT),
so nothing crashes and no VIP stays on a host that is not MASTER.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from ipaddress import IPv6Address
from typing import assert_never

import structlog

from vrrpd.core.actions import (
    Action,
    AddVips,
    Announce,
    DelVips,
    Dropped,
    LogEvent,
    PriorityChanged,
    RunNotify,
    SendAdvert,
    State,
    StateChanged,
)
from vrrpd.io.announce import Announcer
from vrrpd.io.errors import IoError
from vrrpd.io.netlink import Netlink
from vrrpd.io.notify import Notifier, Spawner
from vrrpd.io.rawsock import SocketPool
from vrrpd.proto.advert import IPAddress
from vrrpd.proto.packet import encode

log = structlog.get_logger("vrrpd")

Fault = tuple[str, str, str]  # (instance, fault key, reason)
StateListener = Callable[[str, State], None]  # (instance, new state)
DROP_LOG_INTERVAL_S = 10.0  # keepalived rate-limits packet error lines too
ENCODE_CACHE_MAX = 4096


class Executor:
    """One per daemon; `run(actions)` returns the faults the IO layer ran into."""

    def __init__(
        self, pool: SocketPool, netlink: Netlink, notifier: Notifier, spawn: Spawner, detail: bool
    ) -> None:
        self.pool = pool
        self.netlink = netlink
        self.notifier = notifier
        self.spawn = spawn
        self.detail = detail
        self.announcers: dict[str, Announcer] = {}
        self.announce_dev: dict[str, str] = {}  # instance -> interface its GARPs go out of
        self._encoded: dict[int, tuple[SendAdvert, tuple[bytes, ...]]] = {}
        self._drop_logged: dict[tuple[str | None, str], float] = {}
        self.send_errors = 0
        # Services that follow VRRP states (lvs_sync_daemon): called in the consumer task, in
        # action order; a listener must not block (schedule its IO, do not await it here).
        self.state_listeners: list[StateListener] = []

    async def run(self, actions: list[Action]) -> list[Fault]:
        faults: list[Fault] = []
        for action in actions:
            match action:
                case SendAdvert():
                    faults += self._send(action)
                case AddVips():
                    faults += await self._add(action)
                case DelVips():
                    await self._delete(action)
                case Announce() if any(f[0] == action.instance for f in faults):
                    pass  # never announce addresses that could not all be added
                case Announce():
                    self._announce(action)
                case RunNotify():
                    self.notifier.fire(action.target, action.name, action.event, action.priority)
                case LogEvent():
                    _log_event(action, self.detail)
                case Dropped():
                    self._log_drop(action)
                case StateChanged():
                    self._state_changed(action)
                case PriorityChanged():
                    pass  # the matching LogEvent carries keepalived's text
                case _:
                    assert_never(action)
        return faults

    def _state_changed(self, a: StateChanged) -> None:
        if a.new is State.FAULT:
            log.info(f"({a.instance}) FAULT because {a.reason}")
        for listener in self.state_listeners:
            try:
                listener(a.instance, a.new)
            except Exception:  # a listener's bug must not stop the VRRP actions after it
                log.exception(f"({a.instance}) state listener failed")

    def _send(self, a: SendAdvert) -> list[Fault]:
        """Steady state costs a dict lookup and a send: the core hands the same SendAdvert
        object while nothing in it changes, and its encoded bytes are kept by identity."""
        entry = self._encoded.get(id(a))
        if entry is None or entry[0] is not a:
            if len(self._encoded) >= ENCODE_CACHE_MAX:
                self._encoded.clear()
            payloads = tuple(
                encode(a.advert, a.src, dst, checksum_as_v2=a.checksum_as_v2) for dst in a.dsts
            )
            entry = self._encoded[id(a)] = (a, payloads)  # holding `a` keeps its id unique
        for dst, payload in zip(a.dsts, entry[1], strict=True):
            try:
                self.pool.get(a.interface, _family(dst)).send(payload, a.src, dst, a.ttl)
            except (IoError, OSError) as exc:
                self.send_errors += 1
                log.error(f"({a.instance}) cannot send advert to {dst}: {exc}")
                if isinstance(exc, IoError) and exc.errno in (errno.ENODEV, errno.ENXIO):
                    return [(a.instance, "socket", f"cannot send on {a.interface}: {exc}")]
        return []

    async def _add(self, a: AddVips) -> list[Fault]:
        try:
            await self.netlink.add_vips(a.interface, a.vips)
            await self.netlink.add_routes(a.routes)
            await self.netlink.add_rules(a.rules)
        except (IoError, OSError) as exc:
            log.error(f"({a.instance}) cannot set VIPs on {a.interface}: {exc}")
            return [(a.instance, "vips", f"cannot set VIPs: {exc}")]
        return []

    async def _delete(self, a: DelVips) -> None:
        try:
            await self.netlink.del_rules(a.rules)
            await self.netlink.del_routes(a.routes)
            await self.netlink.del_vips(a.interface, a.vips)
        except (IoError, OSError) as exc:
            log.error(f"({a.instance}) cannot remove VIPs from {a.interface}: {exc}")

    def _announce(self, a: Announce) -> None:
        if not a.addresses or a.repeat <= 0:
            return
        iface = self.announce_dev.get(a.instance, a.interface)  # use_vmac: GARP from the VMAC
        try:
            announcer = self.announcers.get(iface)
            if announcer is None:
                announcer = self.announcers[iface] = Announcer(iface)
        except IoError as exc:
            log.error(f"({a.instance}) cannot send gratuitous ARP/NA: {exc}")
            return
        if self.detail:
            addrs = ", ".join(str(x) for x in a.addresses)
            log.debug(f"({a.instance}) Sending/queueing gratuitous ARPs on {iface} for {addrs}")
        if a.interval_s > 0:
            self.spawn(announcer.burst(a.addresses, a.repeat, a.interval_s))
            return
        try:
            for _ in range(a.repeat):
                for address in a.addresses:
                    announcer.send_one(address)
        except (IoError, OSError) as exc:
            log.error(f"({a.instance}) gratuitous ARP/NA on {iface} failed: {exc}")

    def _log_drop(self, d: Dropped) -> None:
        key = (d.instance, d.reason.value)
        now = time.monotonic()
        if now - self._drop_logged.get(key, -DROP_LOG_INTERVAL_S) < DROP_LOG_INTERVAL_S:
            return
        self._drop_logged[key] = now
        who = f"({d.instance}) " if d.instance else ""
        detail = f" ({d.detail})" if d.detail else ""
        log.info(f"{who}dropped packet from {d.src}: {d.reason.value}{detail}")

    def close(self) -> None:
        for announcer in self.announcers.values():
            announcer.close()


def _family(addr: IPAddress) -> int:
    return 6 if isinstance(addr, IPv6Address) else 4


def _log_event(event: LogEvent, detail: bool) -> None:
    who = f"VRRP_Group({event.instance})" if event.group else f"({event.instance})"
    text = f"{who} {event.message}"
    if event.detail:
        if detail:
            log.debug(text)
    else:
        log.info(text)
