"""The engine: every instance of one configuration, driven by typed inputs and `now`.

The runtime talks only to this object (see ../../DESIGN.md, "How one advert travels"):
`on_link` for what netlink reports, `start`, `receive_datagram`, `on_timer`, `shutdown`, and
`next_deadline` to arm its single timer. Each returns the ordered actions to execute.

A datagram is decoded (a malformed one is dropped with a keepalived counter name), routed by
(interface, family, VRID) as keepalived does, checked against RFC 3768 / RFC 5798 section 7.1,
and only then handed to the instance's state machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from vrrpd.config.model import Config, InstanceConfig
from vrrpd.core import reload as reloading
from vrrpd.core.actions import Action, Dropped, LogEvent, State
from vrrpd.core.inputs import LinkState
from vrrpd.core.instance import LINK_FAULT, Instance, ManualError
from vrrpd.core.schedule import Deadlines
from vrrpd.core.syncgroup import SyncGroup
from vrrpd.errors import DropReason, PacketError
from vrrpd.proto.advert import Advert, Datagram, IPAddress
from vrrpd.proto.checks import CheckResult, RxPolicy, check_advert
from vrrpd.proto.packet import decode

__all__ = ["Engine", "InstanceStatus", "ManualError", "rx_policy"]

RouteKey = tuple[str, int, int]  # (interface, family, VRID)
RX_CACHE_MAX = 4096  # distinct advert payloads remembered
RX_CACHE_PER_PAYLOAD = 8  # (source, destination, TTL, interface) kept per payload
Accepted = tuple["Instance", Advert, CheckResult]  # what the receive checks let through


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """A snapshot of one instance for status output, dumps and metrics."""

    name: str
    interface: str
    vrid: int
    family: int
    version: int
    state: State
    base_priority: int
    effective_priority: int
    master_addr: IPAddress | None
    src: IPAddress | None
    advert_int_cs: int
    master_adver_int_cs: int
    vips: tuple[str, ...]
    faults: tuple[str, ...]
    last_transition_at: float | None
    last_reason: str
    stats: dict[str, int]
    # Manual failover in force: "resign" / "takeover" (with the resign hold's end), and a
    # runtime base-priority override; the sync group the instance belongs to.
    manual: str | None = None
    manual_until: float | None = None
    base_override: int | None = None
    sync_group: str | None = None


# Instances sharing one advert slot (one wake-up and one burst of adverts per interval): at most
# this many. keepalived 2.2.7's own master sends 200 instances at 100 ms in bursts of up to 90
# (netns lab capture, gaps under 1 ms), so a burst of 64 asks no more of a receiver's socket
# buffer than keepalived does (212992 bytes by default: 256 adverts on veth).
ADVERT_SLOT_SIZE = 64


class Engine:
    """Owns the instances; the single object the runtime feeds."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.instances: dict[str, Instance] = {i.name: Instance(i) for i in config.instances}
        self._routes: dict[RouteKey, list[Instance]] = {}
        self._policies: dict[str, RxPolicy] = {}
        self.links: dict[str, LinkState] = {}
        self._ifnames: dict[int, str] = {}
        self.unmatched: dict[str, int] = {}
        self._deadlines = Deadlines()
        # Accepted adverts repeat byte for byte every interval; decoding, routing and checking
        # them is a pure function of (bytes, src, dst, ttl, ifindex), so the result is reused.
        self._rx_cache: dict[bytes, list[tuple[Datagram, Accepted]]] = {}
        self.groups: dict[str, SyncGroup] = {}
        self._group_of: dict[str, SyncGroup] = {}
        self.index()

    def index(self) -> None:
        """(Re)build what derives from `config` and `instances`: routing by (interface, family,
        VRID), receive policies and sync groups; at start and on every reload (core/reload.py)."""
        self._routes, self._policies = {}, {}
        assign_advert_slots(list(self.instances.values()))
        for inst in self.instances.values():
            key = (inst.interface, inst.cfg.family, inst.cfg.vrid)
            self._routes.setdefault(key, []).append(inst)
            self._policies[inst.name] = rx_policy(inst.cfg)
        self._rx_cache.clear()
        self.groups, self._group_of = {}, {}
        for gcfg in self.config.sync_groups:
            members = [self.instances[m] for m in gcfg.members if m in self.instances]
            group = self.groups[gcfg.name] = SyncGroup(gcfg, members)
            self._group_of.update((m.name, group) for m in members)

    # -- inputs ---------------------------------------------------------------------------------

    def on_link(self, link: LinkState, now: float) -> list[Action]:
        """netlink reported an interface (new, up/down, addresses changed)."""
        self.links[link.interface] = link
        self._ifnames[link.ifindex] = link.interface
        self._rx_cache.clear()  # routing by ifindex may have changed
        actions: list[Action] = []
        for inst in self.instances.values():
            if inst.interface != link.interface:
                continue
            addr = link.addr6 if inst.cfg.family == 6 else link.addr4
            actions += inst.set_link_src(addr, now)
            if inst.cfg.track_primary:
                reason = None if link.up else f"interface {link.interface} down"
                actions += inst.set_fault(LINK_FAULT, reason, now)
            actions += self._settled(inst, now)
        return actions

    def on_address_removed(self, interface: str, address: IPAddress, now: float) -> list[Action]:
        """netlink reported an address deleted from `interface` (tracked-VIP handling)."""
        actions: list[Action] = []
        for inst in self.instances.values():
            if inst.interface == interface or any(v.dev == interface for v in inst.cfg.vips):
                actions += inst.on_vip_deleted(address, now)
                actions += self._settled(inst, now)
        return actions

    def start(self, now: float) -> list[Action]:
        """Leave INIT: instances whose interface is missing start in FAULT (keepalived `(init)`);
        sync groups notify their initial state first, as keepalived's `vrrp_init_state`."""
        actions: list[Action] = []
        for inst in self.instances.values():
            if inst.interface and inst.interface not in self.links:
                inst.set_fault(LINK_FAULT, f"interface {inst.interface} does not exist", now)
            if inst.src is None:
                inst.set_fault("src", "src address not configured", now)
        for group in self.groups.values():
            actions += group.start(now)
        for inst in self.instances.values():
            actions += inst.start(now)
            actions += self._settled(inst, now)
        return actions

    def receive_datagram(self, dgram: Datagram, now: float) -> list[Action]:
        """One received VRRP packet: decode, route, check, then the state machine."""
        hit = self._cached(dgram)
        if hit is None:
            checked = self._decode_and_check(dgram)
            if isinstance(checked, list):
                return checked  # dropped
            hit = self._remember(dgram, checked)
        inst, advert, result = hit
        src, own = dgram.src, inst.src
        if src is own or src == own:
            return self._drop(inst, DropReason.OWN_ADVERT, src)
        actions: list[Action] = []
        for note in result.notes:
            skip = note == DropReason.ADDR_LIST_ERR and inst.cfg.skip_check_adv_addr
            if skip and src == inst.master_addr:
                continue
            inst.stats.count(note)
            actions.append(LogEvent(inst.name, _note_text(note, src, result.detail)))
        actions += inst.on_advert(advert, src, now)
        return actions + self._settled(inst, now)

    def _cached(self, dgram: Datagram) -> Accepted | None:
        """The earlier verdict on the same bytes from the same source, to the same destination,
        with the same TTL on the same interface. Keyed by the bytes alone, the addresses compared
        by identity first: the socket layer hands the same address objects again, and an
        address's hash is computed in Python, each time."""
        entries = self._rx_cache.get(dgram.data)
        if entries is None:
            return None
        src, dst = dgram.src, dgram.dst
        for seen, hit in entries:
            if (
                (seen.src is src or seen.src == src)
                and (seen.dst is dst or seen.dst == dst)
                and seen.ttl == dgram.ttl
                and seen.ifindex == dgram.ifindex
            ):
                return hit
        return None

    def _remember(self, dgram: Datagram, hit: Accepted) -> Accepted:
        if len(self._rx_cache) >= RX_CACHE_MAX:
            self._rx_cache.clear()
        entries = self._rx_cache.setdefault(dgram.data, [])
        if len(entries) >= RX_CACHE_PER_PAYLOAD:
            entries.clear()
        entries.append((dgram, hit))
        return hit

    def _decode_and_check(self, dgram: Datagram) -> Accepted | list[Action]:
        """RFC 5798 / RFC 3768 section 7.1 for one datagram: accepted, or the drop actions."""
        iface = self._ifnames.get(dgram.ifindex, "")
        try:
            advert = decode(dgram.data, dgram.src, dgram.dst)
        except PacketError as err:
            vrid = dgram.data[1] if len(dgram.data) > 1 else 0
            inst = self._route(iface, dgram.family, vrid, dgram.src)
            return self._drop(inst, err.reason, dgram.src, err.detail)
        inst = self._route(iface, dgram.family, advert.vrid, dgram.src)
        if inst is None:
            return self._drop(None, DropReason.UNKNOWN_VRID, dgram.src, f"VRID {advert.vrid}")
        result = check_advert(advert, dgram, self._policies[inst.name])
        if result.drop is not None:
            return self._drop(inst, result.drop, dgram.src, result.detail)
        return inst, advert, result

    def on_timer(self, now: float) -> list[Action]:
        """Fire every instance deadline due at `now` (only the due instances are touched)."""
        actions: list[Action] = []
        for name in self._deadlines.pop_due(now, self._deadline_of):
            inst = self.instances[name]
            actions += inst.on_timer(now)
            actions += self._settled(inst, now)
        return actions

    def set_priority(
        self,
        name: str,
        now: float,
        *,
        base: int | None = None,
        delta: tuple[str, int] | None = None,
    ) -> list[Action]:
        """A base-priority override or one tracker's weight contribution changed."""
        inst = self.instances[name]
        actions = inst.set_priority(now, base=base, delta=delta)
        return actions + self._settled(inst, now)

    def set_fault(self, name: str, key: str, reason: str | None, now: float) -> list[Action]:
        """Raise (`reason`) or clear (None) one fault source of instance `name`."""
        inst = self.instances[name]
        actions = inst.set_fault(key, reason, now)
        return actions + self._settled(inst, now)

    # -- manual failover (vrrpctl; issue 6) -----------------------------------------------------

    def override_priority(
        self, name: str, base: int | None, now: float, *, who: str = "control"
    ) -> list[Action]:
        """Runtime base-priority override (1..254) until cleared or restart; None clears it and
        any resign hold or takeover. Raises `ManualError` for an unknown name or a bad value."""
        inst = self._manual_target(name)
        actions = inst.override_base(base, now, who)
        return actions + self._settled(inst, now)

    def resign(
        self, name: str, now: float, hold_s: float | None = None, *, who: str = "control"
    ) -> list[Action]:
        """Hand mastership away without splitting the brain: priority 0, BACKUP, then priority 1
        for `hold_s` seconds (None: until `takeover` or `override_priority(name, None)`), so this
        node does not preempt back, but still takes over if no other router does. A sync group
        member resigns with its whole group."""
        members = self._manual_members(name, "resign", hold_s)
        actions: list[Action] = []
        for inst in members:
            actions += inst.resign(now, hold_s, who)
        return actions + self._manual_done(members, now)

    def takeover(self, name: str, now: float, *, who: str = "control") -> list[Action]:
        """Become MASTER now at priority 254 (an owner keeps 255) so the current master yields;
        ends a resign hold. Raises `ManualError` unless the instance is BACKUP or MASTER. A sync
        group member takes over with its whole group."""
        members = self._manual_members(name, "take over")
        actions: list[Action] = []
        for inst in members:
            actions += inst.takeover(now, who)
        return actions + self._manual_done(members, now)

    def _manual_target(self, name: str) -> Instance:
        inst = self.instances.get(name)
        if inst is None:
            raise ManualError(f"no vrrp_instance named {name!r}")
        return inst

    def _manual_members(self, name: str, what: str, hold_s: float | None = None) -> list[Instance]:
        """The instance, or its whole sync group, checked before any of them is touched."""
        inst = self._manual_target(name)
        group = self._group_of.get(name)
        members = list(group.members) if group is not None else [inst]
        for member in members:
            member.check_manual(what, hold_s)
        return members

    def _manual_done(self, members: list[Instance], now: float) -> list[Action]:
        for inst in members:
            self._schedule(inst)
        group = self._group_of.get(members[0].name)
        return group.settle(now) if group is not None else []

    def reload(self, config: Config, now: float) -> list[Action]:
        """SIGHUP (keepalived RELOAD): move onto `config`, matching old and new instances as
        keepalived does and keeping their state (core/reload.py); deadlines are re-armed."""
        actions = reloading.apply(self, config, now)
        self._deadlines.clear()
        for inst in self.instances.values():
            self._schedule(inst)
        return actions

    def shutdown(self, now: float) -> list[Action]:
        """SIGTERM: masters send priority 0 and release addresses, then every STOP notify."""
        actions: list[Action] = []
        for inst in self.instances.values():
            actions += inst.shutdown_release(now)
        for inst in self.instances.values():
            actions += inst.shutdown_stop(now)
        for group in self.groups.values():
            actions += group.stop()
        self._deadlines.clear()
        return actions

    def next_deadline(self) -> float | None:
        """The earliest time `on_timer` has something to do, or None."""
        return self._deadlines.next(self._deadline_of)

    def _deadline_of(self, name: str) -> float | None:
        inst = self.instances.get(name)
        return inst.next_deadline() if inst is not None else None

    def status(self) -> list[InstanceStatus]:
        groups = {name: g.name for name, g in self._group_of.items()}
        return [_status(inst, groups.get(inst.name)) for inst in self.instances.values()]

    # -- internals ------------------------------------------------------------------------------

    def _route(self, iface: str, family: int, vrid: int, src: IPAddress) -> Instance | None:
        """keepalived matches by interface, family and VRID; unicast instances sharing a VRID
        on one interface are told apart by their peer lists."""
        candidates = self._routes.get((iface, family, vrid))
        if not candidates:
            candidates = self._routes.get(("", family, vrid))  # unicast without `interface`
        if not candidates:
            return None
        for inst in candidates:
            if any(p.address == src for p in inst.cfg.unicast_peers):
                return inst
        return candidates[0]

    def _drop(
        self, inst: Instance | None, reason: DropReason, src: IPAddress, detail: str = ""
    ) -> list[Action]:
        if inst is None:
            self.unmatched[reason.value] = self.unmatched.get(reason.value, 0) + 1
            return [Dropped(None, reason, src, detail)]
        inst.stats.count(reason)
        return [Dropped(inst.name, reason, src, detail)]

    def _settled(self, inst: Instance, now: float) -> list[Action]:
        """After `inst` handled an input: its sync group follows, deadlines are re-armed."""
        group = self._group_of.get(inst.name)
        if group is None:
            self._schedule(inst)
            return []
        actions = group.follow(inst, now)
        for member in group.members:
            self._schedule(member)
        return actions

    def _schedule(self, inst: Instance) -> None:
        self._deadlines.schedule(inst.name, inst.next_deadline())


def assign_advert_slots(instances: list[Instance]) -> None:
    """Give instances with the same advert interval shared advert slots: as few slots as hold
    them `ADVERT_SLOT_SIZE` at most, filled evenly in configuration order, their grids spread
    evenly over the interval.

    Many masters then cost one timer wake-up and one burst per slot and interval, on this host
    and on every Backup receiving them, instead of one each. An advert is early only when its
    instance first joins its slot (entering MASTER, a reload, a priority change advertised at
    once), and never later than one interval after the previous one.
    """
    by_interval: dict[int, list[Instance]] = {}
    for inst in instances:
        by_interval.setdefault(inst.cfg.advert_int_cs, []).append(inst)
    for interval_cs, members in by_interval.items():
        period = interval_cs / 100.0
        slots = -(-len(members) // ADVERT_SLOT_SIZE)
        for i, inst in enumerate(members):
            inst.advert_slot = (period, (i * slots // len(members)) * period / slots)


def rx_policy(cfg: InstanceConfig) -> RxPolicy:
    """What the receive checks expect of adverts for `cfg` (RFC 3768 / RFC 5798 section 7.1)."""
    adver_int = cfg.advert_int_cs // 100 if cfg.version == 2 else cfg.advert_int_cs
    return RxPolicy(
        version=cfg.version,
        adver_int=adver_int,
        auth=cfg.auth if cfg.version == 2 else None,
        unicast=cfg.unicast,
        unicast_peers=cfg.unicast_peers,
        check_unicast_src=cfg.check_unicast_src,
        vips=tuple(v.ip for v in cfg.vips),
        owner=cfg.owner,
        owner_ignore_adverts=cfg.strict and cfg.owner,
    )


def _note_text(note: DropReason, src: IPAddress, detail: str) -> str:
    if note == DropReason.ADVERT_INTERVAL_ERR:
        return f"advertisement interval mismatch with {src} ({detail}) - adopting it"
    return f"address list mismatch in advert from {src} ({detail}) - accepted"


def _status(inst: Instance, group: str | None) -> InstanceStatus:
    cfg = inst.cfg
    return InstanceStatus(
        name=inst.name,
        interface=inst.interface,
        vrid=cfg.vrid,
        family=cfg.family,
        version=cfg.version,
        state=inst.state,
        base_priority=inst.base_priority,
        effective_priority=inst.effective_priority,
        master_addr=inst.master_addr,
        src=inst.src,
        advert_int_cs=cfg.advert_int_cs,
        master_adver_int_cs=inst.master_adver_int_cs,
        vips=tuple(str(v.address) for v in cfg.vips),
        faults=tuple(inst.faults.values()),
        last_transition_at=inst.last_transition_at,
        last_reason=inst.last_reason,
        stats=inst.stats.as_dict(),
        manual=inst.manual.value if inst.manual is not None else None,
        manual_until=inst.manual_until,
        base_override=inst.base_override,
        sync_group=group,
    )
