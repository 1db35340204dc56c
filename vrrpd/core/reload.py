"""keepalived RELOAD (SIGHUP) in the pure core: old and new instances matched, their state kept.

Theory of operation
-------------------
`apply(engine, config, now)` moves a running `Engine` onto `config` and returns the ordered
actions (keepalived.md 3.2 "HUP (RELOAD)"; keepalived `clear_diff_vrrp`, `restore_vrrp_state`):

1. Every MASTER sends one advert at once, with the configuration it ran, before anything else.
2. Old and new instances are matched as keepalived's `vrrp_exist` does: VRID, family, configured
   interface, unicast (with its source address) or multicast (with its group) and VMAC, never by
   name, so a renamed instance is the same virtual router. An old instance with no match is
   deleted (`Instance.delete`: a MASTER sends priority 0 and releases its addresses; notify
   DELETED if `notify_deleted` is configured, else FAULT).
3. A matched instance keeps its state, timers, counters, master, tracker contributions and
   manual override, and takes the new configuration: a MASTER removes only the addresses,
   routes and rules no longer configured, adds the new ones and announces only those, with no
   notify; the base priority is the new one, re-derived and advertised (MASTER) or re-timed
   (BACKUP); contributions and faults of trackers it no longer references are dropped.
4. The engine's tables are rebuilt, new instances start as at boot (`Entering BACKUP STATE
   (init)`, an owner goes on to MASTER) and each sync group settles: a surviving group keeps its
   state and newcomers follow it (keepalived restores a group's saved state); a new group takes
   its members' common state, BACKUP when they differ.
5. An address, route or rule removed by one instance and added by another in the same reload is
   not removed at all. keepalived's man page warns that such a move may need two reloads (its
   removal can run after the addition); here one reload moves it without a gap.

The tracker service restarts after the engine reload; `carry_scripts` and `restate` (below) keep
an unchanged tracker from moving any priority on the way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from vrrpd.config.model import NOWHERE, Config, InstanceConfig, RouteSpec, RuleSpec, VipSpec
from vrrpd.core import emit
from vrrpd.core.actions import (
    Action,
    AddVips,
    Announce,
    DelVips,
    LogEvent,
    NotifyEvent,
    NotifyTarget,
    RunNotify,
    State,
)
from vrrpd.core.inputs import LinkState
from vrrpd.core.instance import LINK_FAULT, Instance
from vrrpd.core.syncgroup import SYNC_FAULT, SyncGroup
from vrrpd.core.tracking import (
    Change,
    FaultChange,
    Kind,
    PriorityDelta,
    Status,
    Tracking,
    Update,
    plan_watches,
)

if TYPE_CHECKING:
    from vrrpd.core.engine import Engine

__all__ = ["Plan", "apply", "carry_scripts", "match_key", "plan", "restate"]

MatchKey = tuple[object, ...]
_Spec = TypeVar("_Spec", VipSpec, RouteSpec, RuleSpec)
_TRACKER_KINDS = frozenset(k.value for k in Kind)


def match_key(cfg: InstanceConfig) -> MatchKey:
    """keepalived `vrrp_exist`: what makes an old and a new instance the same virtual router."""
    unicast = cfg.unicast
    return (
        cfg.vrid,
        cfg.family,
        cfg.interface or "",
        unicast,
        cfg.src_ip if unicast else None,
        cfg.vmac,
        None if unicast else cfg.mcast_group,
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """Which running instance becomes which configured one; the rest go or come."""

    matched: tuple[tuple[Instance, InstanceConfig], ...]
    removed: tuple[Instance, ...]
    added: tuple[InstanceConfig, ...]


def plan(old: Sequence[Instance], new: Sequence[InstanceConfig]) -> Plan:
    """Match by `match_key`; among equal keys (unicast instances sharing a VRID) the same name
    wins first, then configuration order."""
    pool: dict[MatchKey, list[Instance]] = {}
    for inst in old:
        pool.setdefault(match_key(inst.cfg), []).append(inst)
    found: dict[int, Instance] = {}
    for by_name in (True, False):
        for i, cfg in enumerate(new):
            candidates = pool.get(match_key(cfg), [])
            pick = next((c for c in candidates if c.name == cfg.name or not by_name), None)
            if i not in found and pick is not None:
                candidates.remove(pick)
                found[i] = pick
    taken = {id(inst) for inst in found.values()}
    return Plan(
        matched=tuple((found[i], cfg) for i, cfg in enumerate(new) if i in found),
        removed=tuple(inst for inst in old if id(inst) not in taken),
        added=tuple(cfg for i, cfg in enumerate(new) if i not in found),
    )


def apply(engine: Engine, config: Config, now: float) -> list[Action]:
    """Move `engine` onto `config` (see the module docstring); the caller re-arms deadlines."""
    p = plan(list(engine.instances.values()), config.instances)
    old_groups = {g.name: g.state for g in engine.groups.values()}
    actions = [a for inst in engine.instances.values() for a in _advert_now(inst)]
    for inst in p.removed:
        actions += inst.delete(now)
    old_cfgs = {id(inst): inst.cfg for inst, _ in p.matched}
    for inst, cfg in p.matched:
        actions += _release_dropped(inst, cfg)
    for inst, cfg in p.matched:
        _adopt(inst, cfg)
    fresh = {cfg.name: Instance(cfg) for cfg in p.added}
    kept = {inst.name: inst for inst, _ in p.matched}
    engine.config = config
    engine.instances = {c.name: kept.get(c.name) or fresh[c.name] for c in config.instances}
    engine.index()
    watched = _watched_keys(config)
    grouped = {m.name for g in engine.groups.values() for m in g.members}
    for inst, _ in p.matched:
        old = old_cfgs[id(inst)]
        actions += _reconfigure(inst, old, watched.get(inst.name, frozenset()), now)
        actions += _link_faults(inst, engine.links, now)
        if inst.name not in grouped and SYNC_FAULT in inst.faults:
            actions += inst.set_fault(SYNC_FAULT, None, now)
    actions += _start_new(engine, fresh, old_groups, now)
    return _keep_moved(actions)


# -- steps ------------------------------------------------------------------------------------


def _advert_now(inst: Instance) -> list[Action]:
    """keepalived's first reload step: a MASTER advertises at once."""
    if inst.state != State.MASTER:
        return []
    inst.stats.advert_sent += 1
    return [emit.send_advert(inst.cfg, inst.src, inst.advert())]


def _release_dropped(inst: Instance, new: InstanceConfig) -> list[Action]:
    """keepalived `clear_diff_vrrp_vip` / `_vroutes` / `_vrules`: a MASTER removes only what the
    new configuration no longer has."""
    if inst.state != State.MASTER:
        return []
    vips, routes, rules = _only_in(inst.cfg, new)
    if not (vips or routes or rules):
        return []
    return [
        LogEvent(new.name, "removing VIPs.", detail=True),
        DelVips(new.name, inst.cfg.interface or "", vips, routes, rules),
    ]


def _adopt(inst: Instance, cfg: InstanceConfig) -> None:
    """Take the new configuration; what it changes is acted on in `_reconfigure`, once the
    engine's tables (and sync group gates) are rebuilt."""
    inst.cfg, inst.name = cfg, cfg.name
    inst.notify_priority_changes = cfg.notify_priority_changes  # a group ORs its own back in
    inst.gate = None  # set again by the instance's sync group, if it still has one
    if inst.base_override is None:
        inst.base_priority = cfg.priority
    # A VRRPv3 BACKUP keeps the interval it adopted from the live master (RFC 5798 6.4.2).
    if cfg.version == 2 or inst.state != State.BACKUP or inst.master_addr is None:
        inst.master_adver_int_cs = cfg.advert_int_cs


def _reconfigure(
    inst: Instance, old: InstanceConfig, watched: frozenset[str], now: float
) -> list[Action]:
    """keepalived `restore_vrrp_state` for a matched instance: priority re-derived, a MASTER's
    new addresses added and announced, a BACKUP's down timer re-timed, stale trackers gone."""
    for key in [k for k in inst.priority_deltas if _is_tracker(k) and k not in watched]:
        del inst.priority_deltas[key]
    actions = inst.set_priority(now)
    if inst.state == State.MASTER:
        inst.adver_at = inst.next_advert_at(now)  # one advert went out just now
        actions += _add_new(inst, old)
    elif inst.state == State.BACKUP:
        inst._rearm_down_timer(now)  # the interval or priority may have changed
    for key in [k for k in inst.faults if _is_tracker(k) and k not in watched]:
        actions += inst.set_fault(key, None, now)
    return actions


def _add_new(inst: Instance, old: InstanceConfig) -> list[Action]:
    """A MASTER adds what is new and sends one gratuitous ARP / NA burst for the new addresses
    only (keepalived announces after a reload that added addresses)."""
    cfg = inst.cfg
    vips, routes, rules = _only_in(cfg, old)
    if not (vips or routes or rules):
        return []
    iface = cfg.interface or ""
    actions: list[Action] = [
        LogEvent(inst.name, "setting VIPs.", detail=True),
        AddVips(inst.name, iface, vips, routes, rules),
    ]
    if vips:
        interval = cfg.garp.na_interval_s if cfg.family == 6 else cfg.garp.interval_s
        addrs = tuple(v.ip for v in vips)
        actions.append(Announce(inst.name, iface, addrs, cfg.garp.master_repeat, interval))
    return actions


def _link_faults(inst: Instance, links: Mapping[str, LinkState], now: float) -> list[Action]:
    """Re-read the link for options a reload may change (`mcast_src_ip`, `dont_track_primary`)."""
    link = links.get(inst.interface)
    if link is None:
        return []
    actions = inst.set_link_src(link.addr6 if inst.cfg.family == 6 else link.addr4, now)
    down = inst.cfg.track_primary and not link.up
    reason = f"interface {link.interface} down" if down else None
    if inst.faults.get(LINK_FAULT) != reason:
        actions += inst.set_fault(LINK_FAULT, reason, now)
    return actions


def _start_new(
    engine: Engine, fresh: Mapping[str, Instance], old_groups: Mapping[str, State], now: float
) -> list[Action]:
    """New instances start as at boot (`Engine.start`); a group made only of new instances
    notifies first as at boot, any other group settles around its surviving members."""
    for inst in fresh.values():
        _prepare(inst, engine.links, now)
    actions: list[Action] = []
    all_new = [g for g in engine.groups.values() if all(m.name in fresh for m in g.members)]
    for group in all_new:
        actions += group.start(now)
    for inst in fresh.values():
        actions += inst.start(now)
        for group in all_new:
            if inst in group.members:
                actions += group.follow(inst, now)
    for other in engine.groups.values():
        if other not in all_new:
            actions += _settle(other, old_groups.get(other.name), now)
    return actions


def _prepare(inst: Instance, links: Mapping[str, LinkState], now: float) -> None:
    """What `Engine.on_link` and `Engine.start` tell an instance before it starts."""
    link = links.get(inst.interface)
    if link is not None:
        inst.set_link_src(link.addr6 if inst.cfg.family == 6 else link.addr4, now)
        if inst.cfg.track_primary and not link.up:
            inst.set_fault(LINK_FAULT, f"interface {link.interface} down", now)
    elif inst.interface:
        inst.set_fault(LINK_FAULT, f"interface {inst.interface} does not exist", now)
    if inst.src is None:
        inst.set_fault("src", "src address not configured", now)


def _settle(group: SyncGroup, old: State | None, now: float) -> list[Action]:
    """A group with surviving members after a reload: FAULT if a member is down; MASTER if it
    was (newcomers join it, keepalived's saved sync state) or every member is; else BACKUP.
    Members not in that state are synced; the group notifies only if its state changed."""
    members = group.members
    down = any(any(k != SYNC_FAULT for k in m.faults) for m in members)
    masters = [m for m in members if m.state == State.MASTER]
    if down:
        target = State.FAULT
    elif masters and (old == State.MASTER or len(masters) == len(members)):
        target = State.MASTER
    else:
        target = State.BACKUP
    group.state = target
    actions = group._spread_faults(now)  # the group's own rule, for its new membership
    movers = [m for m in members if m.state in (State.BACKUP, State.MASTER) and m.state != target]
    if movers and target != State.FAULT:
        actions.append(
            LogEvent(group.name, f"Syncing instances to {target.value} state", group=True)
        )
        for member in movers:
            actions += member.sync_to(target, now, group.name)
    if old != target:
        actions.append(RunNotify(NotifyTarget.GROUP, group.name, NotifyEvent(target.value), 0))
    return actions


def _keep_moved(actions: list[Action]) -> list[Action]:
    """Drop each removal of an address, route or rule that a later action of the same reload
    adds again (a move between instances): it stays installed instead of blinking out."""
    vips: set[tuple[str, VipSpec]] = set()
    routes: set[RouteSpec] = set()
    rules: set[RuleSpec] = set()
    out: list[Action] = []
    dropped: str | None = None  # the instance whose whole removal was dropped: skip its log
    for action in reversed(actions):
        if dropped is not None and action == LogEvent(dropped, "removing VIPs.", detail=True):
            dropped = None
            continue
        dropped = None
        if isinstance(action, AddVips):
            vips.update((v.dev or action.interface, _bare(v)) for v in action.vips)
            routes.update(_bare(r) for r in action.routes)
            rules.update(_bare(r) for r in action.rules)
        elif isinstance(action, DelVips):
            iface = action.interface
            trimmed = DelVips(
                action.instance,
                iface,
                tuple(v for v in action.vips if (v.dev or iface, _bare(v)) not in vips),
                tuple(r for r in action.routes if _bare(r) not in routes),
                tuple(r for r in action.rules if _bare(r) not in rules),
            )
            if trimmed.vips or trimmed.routes or trimmed.rules:
                out.append(trimmed)
            else:
                dropped = action.instance
            continue
        out.append(action)
    out.reverse()
    return out


# -- trackers ---------------------------------------------------------------------------------


def carry_scripts(old: Tracking, new: Tracking) -> list[str]:
    """A `vrrp_script` whose name survives keeps its result across the restart. keepalived keeps
    a succeeding one (`VRRP_Script(X) considered successful on reload`) and restarts a failing
    one from INIT; here a failing one stays failed too, so a reload never bounces a priority."""
    lines: list[str] = []
    for name, counter in new.counters.items():
        before = old.counters.get(name)
        if before is None or before.status is Status.INIT:
            continue
        counter.status, counter.last_rc = before.status, before.last_rc
        good = before.status is Status.GOOD
        counter.result = counter.rise + counter.fall - 1 if good else 0
        if good:
            lines.append(f"VRRP_Script({name}) considered successful on reload")
    return lines


def restate(tracking: Tracking, update: Update) -> Update:
    """The first update of a (re)started tracker set, made complete: every watched (instance,
    tracker) gets its contribution and fault stated, zero and none included, so an engine that
    still holds values from before a reload ends up exactly in step (unchanged ones are no-ops).
    """
    deltas = {(c.instance, c.key): c for c in update.changes if isinstance(c, PriorityDelta)}
    faults = {(c.instance, c.key): c for c in update.changes if isinstance(c, FaultChange)}
    raised: list[Change] = []
    moved: list[Change] = []
    cleared: list[Change] = []
    for w in tracking.watches:
        key = (w.instance, w.key)
        fault = faults.get(key, FaultChange(w.instance, w.key, None))
        (cleared if fault.reason is None else raised).append(fault)
        moved.append(deltas.get(key, PriorityDelta(w.instance, w.key, 0)))
    # As `Tracking._refresh`: faults raised before priorities move, cleared after.
    return Update(logs=list(update.logs), changes=raised + moved + cleared)


# -- helpers ----------------------------------------------------------------------------------


def _watched_keys(config: Config) -> dict[str, frozenset[str]]:
    watches, _ = plan_watches(config)
    keys: dict[str, set[str]] = {}
    for w in watches:
        keys.setdefault(w.instance, set()).add(w.key)
    return {name: frozenset(k) for name, k in keys.items()}


def _is_tracker(key: str) -> bool:
    return key.partition(":")[0] in _TRACKER_KINDS


def _bare(spec: _Spec) -> _Spec:
    """Compared without where it was written: a line moving in the file changes nothing."""
    return dataclasses.replace(spec, location=NOWHERE)


def _only_in(
    a: InstanceConfig, b: InstanceConfig
) -> tuple[tuple[VipSpec, ...], tuple[RouteSpec, ...], tuple[RuleSpec, ...]]:
    """The addresses, routes and rules a MASTER of `a` installs that one of `b` does not."""
    return (
        _missing(a.vips + a.excluded_vips, b.vips + b.excluded_vips),
        _missing(a.virtual_routes, b.virtual_routes),
        _missing(a.virtual_rules, b.virtual_rules),
    )


def _missing(have: tuple[_Spec, ...], other: tuple[_Spec, ...]) -> tuple[_Spec, ...]:
    """The entries of `have` that `other` does not configure."""
    keep = {_bare(s) for s in other}
    return tuple(s for s in have if _bare(s) not in keep)
