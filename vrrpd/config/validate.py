"""Cross-field checks over a whole `Config`: the one place semantic rules that span blocks live.

- names are unique (instances, scripts, track files, track processes, sync groups);
- a VRID is unique per (interface, family, multicast group or unicast peer set) (RFC 5798 6.1);
- every `track_script` / `track_file` / `track_process` and sync-group member exists;
- an instance is in one `vrrp_sync_group` only (man5);
- a VIP duplicated in the same or another instance is ignored with a warning (keepalived does);
- `lvs_sync_daemon ... inst VI` names an instance that exists (a warning: the daemon runs
  without the sync daemon, where keepalived says nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from vrrpd.config.diag import did_you_mean
from vrrpd.config.model import Config, InstanceConfig, SyncGroupConfig, TrackRef, VipSpec
from vrrpd.config.values import Ctx
from vrrpd.errors import Location


def validate(config: Config, ctx: Ctx) -> Config:
    """Report every cross-field problem into `ctx`; return the config with duplicate VIPs gone."""
    for kind, items in (
        ("vrrp_instance", config.instances),
        ("vrrp_script", config.scripts),
        ("track_file", config.track_files),
        ("vrrp_track_process", config.track_processes),
        ("vrrp_sync_group", config.sync_groups),
    ):
        _unique_names(kind, ((i.name, i.location) for i in items), ctx)
    _unique_vrids(config.instances, ctx)
    _references(config, ctx)
    _sync_membership(config, ctx)
    g = config.global_defs
    if g.notify_fifo and g.vrrp_notify_fifo and g.notify_fifo.path == g.vrrp_notify_fifo.path:
        ctx.error(
            ctx.locs.get(("global_defs", "vrrp_notify_fifo"), Location("<config>", 0, 0)),
            "notify_fifo and vrrp_notify_fifo must be different files",
        )
    syncd = g.lvs_sync_daemon
    if syncd and syncd.instance and config.instance(syncd.instance) is None:
        hint = did_you_mean(syncd.instance, [i.name for i in config.instances])
        what = f"lvs_sync_daemon: no vrrp_instance {syncd.instance}"
        ctx.warn(syncd.location, f"{what}; the sync daemon will not be started", hint)
    return replace(config, instances=_dedupe_vips(config.instances, ctx))


def _unique_names(kind: str, items: Iterable[tuple[str, Location]], ctx: Ctx) -> None:
    seen: dict[str, Location] = {}
    for name, loc in items:
        if name in seen:
            ctx.error(loc, f"{kind} {name} is defined twice", f"first defined at {seen[name]}")
        else:
            seen[name] = loc


def _vrid_key(inst: InstanceConfig) -> tuple[object, ...]:
    peers = frozenset(p.address for p in inst.unicast_peers)
    return (inst.interface, inst.family, inst.vrid, peers or inst.mcast_group)


def _unique_vrids(instances: Iterable[InstanceConfig], ctx: Ctx) -> None:
    seen: dict[tuple[object, ...], InstanceConfig] = {}
    for inst in instances:
        key = _vrid_key(inst)
        first = seen.setdefault(key, inst)
        if first is not inst:
            loc = ctx.locs.get((f"vrrp_instance:{inst.name}", "virtual_router_id"), inst.location)
            ctx.error(
                loc,
                f"virtual_router_id {inst.vrid} on {inst.interface} (IPv{inst.family})"
                f" is already used by vrrp_instance {first.name}",
                "each instance on a link needs its own VRID",
            )


def _check_refs(refs: Iterable[TrackRef], kind: str, defined: set[str], ctx: Ctx) -> None:
    for ref in refs:
        if ref.name not in defined:
            hint = did_you_mean(ref.name, defined) or f"define it with {kind} {ref.name} {{ }}"
            ctx.error(ref.location, f"{kind} '{ref.name}' is not defined", hint)


def _references(config: Config, ctx: Ctx) -> None:
    scripts = {s.name for s in config.scripts}
    files = {f.name for f in config.track_files}
    procs = {p.name for p in config.track_processes}
    owners: list[InstanceConfig | SyncGroupConfig] = [*config.instances, *config.sync_groups]
    for owner in owners:
        _check_refs(owner.track_scripts, "vrrp_script", scripts, ctx)
        _check_refs(owner.track_files, "track_file", files, ctx)
        _check_refs(owner.track_processes, "vrrp_track_process", procs, ctx)


def _sync_membership(config: Config, ctx: Ctx) -> None:
    names = {i.name for i in config.instances}
    member_of: dict[str, str] = {}
    for group in config.sync_groups:
        loc = ctx.locs.get((f"vrrp_sync_group:{group.name}", "group"), group.location)
        for member in group.members:
            if member not in names:
                hint = did_you_mean(member, names) or "define the vrrp_instance first"
                ctx.error(loc, f"vrrp_sync_group {group.name}: no vrrp_instance '{member}'", hint)
            elif member in member_of:
                ctx.error(
                    loc,
                    f"vrrp_instance {member} is already in vrrp_sync_group {member_of[member]}",
                    "an instance can be in one sync group only",
                )
            else:
                member_of[member] = group.name


def _dedupe_vips(instances: Iterable[InstanceConfig], ctx: Ctx) -> tuple[InstanceConfig, ...]:
    """keepalived: "VIP duplicates a VIP ... - ignoring" for the same address on the same dev."""
    seen: dict[tuple[object, ...], tuple[str, VipSpec]] = {}
    out = []
    for inst in instances:
        lists: list[tuple[VipSpec, ...]] = []
        for vips in (inst.vips, inst.excluded_vips):
            keep = []
            for vip in vips:
                key = (vip.ip, vip.dev or inst.interface)
                if key in seen:
                    other, first = seen[key]
                    ctx.warn(
                        vip.location,
                        f"VIP {vip.ip} duplicates the VIP at {first.location} "
                        f"(vrrp_instance {other}); ignoring it",
                    )
                    continue
                seen[key] = (inst.name, vip)
                keep.append(vip)
            lists.append(tuple(keep))
        out.append(replace(inst, vips=lists[0], excluded_vips=lists[1]))
    return tuple(out)
