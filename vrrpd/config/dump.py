"""Emitters for the resolved model: JSON (`vrrpd -d`) and YAML (`vrrpd --convert-to-yaml`).

The YAML emitter writes the schema `yamlconf` reads (docs/configuration-yaml.md), with every
value explicit, so loading its output gives a model equal to the one it was made from
(locations aside: compare with `strip_locations`).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
from typing import Any

import yaml

from vrrpd.config.lvsdump import lvs_to_yaml
from vrrpd.config.model import (
    NOWHERE,
    Command,
    Config,
    FifoSpec,
    GlobalDefs,
    InstanceConfig,
    LvsSyncDaemonSpec,
    NotifySpec,
    RouteSpec,
    RuleSpec,
    SyncGroupConfig,
    TrackRef,
    UnicastPeer,
    VipSpec,
)
from vrrpd.errors import Location

_IP_TYPES = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
)


def to_jsonable(value: Any) -> Any:
    """Dataclasses to dicts, enums and addresses to strings, bytes to text; locations as text."""
    if isinstance(value, Location):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _IP_TYPES):
        return str(value)
    if isinstance(value, bytes):
        return value.rstrip(b"\0").decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def dump_json(config: Config) -> str:
    return json.dumps(to_jsonable(config), indent=2)


def strip_locations(value: Any) -> Any:
    """The same model with every location at NOWHERE and no source files: for equality tests."""
    if isinstance(value, Location):
        return NOWHERE
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: strip_locations(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
        if isinstance(value, Config):
            changes["source_files"] = ()
        return dataclasses.replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(strip_locations(v) for v in value)
    return value


# -- YAML ------------------------------------------------------------------------------------
def _command(cmd: Command | None) -> Any:
    if cmd is None:
        return None
    if cmd.user is None and cmd.group is None:
        return list(cmd.argv)
    out: dict[str, Any] = {"command": list(cmd.argv), "user": cmd.user}
    if cmd.group:
        out["group"] = cmd.group
    return out


def _fifo(fifo: FifoSpec | None) -> Any:
    if fifo is None:
        return None
    out = {
        "path": fifo.path,
        "user": fifo.user,
        "group": fifo.group,
        "script": _command(fifo.script),
    }
    return {k: v for k, v in out.items() if v is not None}


def _notify(spec: NotifySpec) -> dict[str, Any]:
    names = {
        "master": "notify_master",
        "backup": "notify_backup",
        "fault": "notify_fault",
        "stop": "notify_stop",
        "deleted": "notify_deleted",
        "generic": "notify",
        "master_rx_lower_pri": "notify_master_rx_lower_pri",
    }
    return {names[k]: _command(getattr(spec, k)) for k in names if getattr(spec, k) is not None}


def _track(refs: tuple[TrackRef, ...]) -> list[Any]:
    out: list[Any] = []
    for ref in refs:
        item: dict[str, Any] = {"name": ref.name}
        if ref.weight is not None:
            item["weight"] = ref.weight
        if ref.reverse:
            item["reverse"] = True
        out.append(item if len(item) > 1 else ref.name)
    return out


def _vip(vip: VipSpec) -> Any:
    item: dict[str, Any] = {"address": str(vip.address)}
    for key in ("dev", "brd", "scope", "label", "track_group"):
        if getattr(vip, key) is not None:
            item[key] = getattr(vip, key)
    if vip.peer is not None:
        item["peer"] = str(vip.peer)
    if vip.preferred_lft is not None:
        item["preferred_lft"] = vip.preferred_lft
    for key in ("dad", "home", "mngtmpaddr", "noprefixroute", "autojoin"):
        if getattr(vip, key):
            item[key] = True
    if not vip.track:
        item["track"] = False
    return item if len(item) > 1 else item["address"]


def _peer(peer: UnicastPeer) -> Any:
    ttl = {k: v for k, v in (("min_ttl", peer.min_ttl), ("max_ttl", peer.max_ttl)) if v is not None}
    return {"address": str(peer.address), **ttl} if ttl else str(peer.address)


def _line(spec: RouteSpec | RuleSpec) -> str:
    return " ".join(spec.args) + ("" if spec.track else " no_track")


def _sync_daemon(spec: LvsSyncDaemonSpec | None) -> str | None:
    """`lvs_sync_daemon` as the words keepalived.conf takes (YAML `words`)."""
    if spec is None:
        return None
    words = [spec.interface, *(("inst", spec.instance) if spec.instance else ())]
    for word, value in (("id", spec.sync_id), ("maxlen", spec.maxlen), ("port", spec.port),
                        ("ttl", spec.ttl), ("group", spec.group)):  # fmt: skip
        if value is not None:
            words += [word, str(value)]
    return " ".join(words)


def _globals(g: GlobalDefs) -> dict[str, Any]:
    garp = g.garp
    out: dict[str, Any] = {
        "router_id": g.router_id,
        "vrrp_version": g.vrrp_version,
        "vrrp_mcast_group4": str(g.mcast_group4),
        "vrrp_mcast_group6": str(g.mcast_group6),
        "vrrp_garp_master_delay_s": garp.master_delay_s,
        "vrrp_garp_master_repeat": garp.master_repeat,
        "vrrp_garp_master_refresh_s": garp.master_refresh_s,
        "vrrp_garp_master_refresh_repeat": garp.master_refresh_repeat,
        "vrrp_garp_lower_prio_delay_s": garp.lower_prio_delay_s,
        "vrrp_garp_lower_prio_repeat": garp.lower_prio_repeat,
        "vrrp_garp_interval_s": garp.interval_s,
        "vrrp_gna_interval_s": garp.na_interval_s,
        "vrrp_lower_prio_no_advert": g.lower_prio_no_advert,
        "vrrp_higher_prio_send_advert": g.higher_prio_send_advert,
        "vrrp_down_timer_adverts": g.down_timer_adverts,
        "vrrp_skip_check_adv_addr": g.skip_check_adv_addr,
        "vrrp_check_unicast_src": g.check_unicast_src,
        "vrrp_strict": g.strict,
        "v3_checksum_as_v2": g.v3_checksum_as_v2,
        "notify_fifo": _fifo(g.notify_fifo),
        "vrrp_notify_fifo": _fifo(g.vrrp_notify_fifo),
        "lvs_notify_fifo": _fifo(g.lvs_notify_fifo),
        "lvs_sync_daemon": _sync_daemon(g.lvs_sync_daemon),
        "vrrp_notify_priority_changes": g.notify_priority_changes,
        "script_user": g.script_user,
        "script_group": g.script_group,
        "enable_script_security": g.enable_script_security,
        "vrrp_startup_delay_s": g.startup_delay_s,
        "default_interface": g.default_interface,
        "state_dump_file": g.state_dump_file,
        "stats_dump_file": g.stats_dump_file,
        "json_dump_file": g.json_dump_file,
        "vmac_prefix": g.vmac_prefix,
        "dynamic_interfaces": g.dynamic_interfaces,
        "log_unknown_vrids": g.log_unknown_vrids,
        "fifo_write_vrrp_states_on_reload": g.fifo_write_states_on_reload,
    }
    return {k: v for k, v in out.items() if v is not None}


def _instance(i: InstanceConfig) -> dict[str, Any]:
    garp = i.garp
    out: dict[str, Any] = {
        "state": i.initial_state.value,
        "interface": i.interface,
        "virtual_router_id": i.vrid,
        "priority": i.priority,
        "advert_int_s": i.advert_int_cs / 100,
        "version": i.version,
        "virtual_ipaddress": [_vip(v) for v in i.vips],
        "virtual_ipaddress_excluded": [_vip(v) for v in i.excluded_vips],
        "virtual_routes": [_line(r) for r in i.virtual_routes],
        "virtual_rules": [_line(r) for r in i.virtual_rules],
        "unicast_src_ip": str(i.src_ip) if i.src_ip else None,
        "unicast_peer": [_peer(p) for p in i.unicast_peers],
        "unicast_ttl": i.unicast_ttl,
        "mcast_dst_ip": str(i.mcast_group) if i.mcast_group and not i.unicast_peers else None,
        "check_unicast_src": i.check_unicast_src,
        "preempt": i.preempt,
        "preempt_delay_s": i.preempt_delay_s,
        "accept": i.accept,
        "track_primary": i.track_primary,
        "track_interface": _track(i.track_interfaces),
        "track_script": _track(i.track_scripts),
        "track_file": _track(i.track_files),
        "track_process": _track(i.track_processes),
        "garp_master_delay_s": garp.master_delay_s,
        "garp_master_repeat": garp.master_repeat,
        "garp_master_refresh_s": garp.master_refresh_s,
        "garp_master_refresh_repeat": garp.master_refresh_repeat,
        "garp_lower_prio_delay_s": garp.lower_prio_delay_s,
        "garp_lower_prio_repeat": garp.lower_prio_repeat,
        "lower_prio_no_advert": i.lower_prio_no_advert,
        "higher_prio_send_advert": i.higher_prio_send_advert,
        "down_timer_adverts": i.down_timer_adverts,
        "skip_check_adv_addr": i.skip_check_adv_addr,
        "v3_checksum_as_v2": i.v3_checksum_as_v2,
        "strict_mode": i.strict,
        **_notify(i.notify),
        "notify_priority_changes": i.notify_priority_changes,
        "smtp_alert": i.smtp_alert,
        "promote_secondaries": i.promote_secondaries,
    }
    if i.auth is not None:
        out["authentication"] = {
            "auth_type": i.auth.type.value,
            "auth_pass": to_jsonable(i.auth.password),
        }
    if i.vmac is not None:
        out["use_vmac"] = {"name": i.vmac.name, "mac": i.vmac.mac, "xmit_base": i.vmac.xmit_base}
    return {k: v for k, v in out.items() if v is not None and v != []}


def _sync_group(s: SyncGroupConfig) -> dict[str, Any]:
    out: dict[str, Any] = {
        "group": list(s.members),
        "track_interface": _track(s.track_interfaces),
        "track_script": _track(s.track_scripts),
        "track_file": _track(s.track_files),
        "track_process": _track(s.track_processes),
        **_notify(s.notify),
        "notify_priority_changes": s.notify_priority_changes,
        "sync_group_tracking_weight": s.sync_group_tracking_weight,
        "smtp_alert": s.smtp_alert,
    }
    return {k: v for k, v in out.items() if v != []}


def to_yaml_dict(config: Config) -> dict[str, Any]:
    """The YAML-schema document for `config` (every value explicit)."""
    doc: dict[str, Any] = {"global_defs": _globals(config.global_defs)}
    doc["vrrp_scripts"] = {
        s.name: {
            "script": list(s.argv),
            "interval_s": s.interval_s,
            "timeout_s": s.timeout_s,
            "weight": s.weight,
            "reverse": s.reverse,
            "rise": s.rise,
            "fall": s.fall,
            **({"user": s.user} if s.user else {}),
            **({"group": s.group} if s.group else {}),
            "init_fail": s.init_fail,
        }
        for s in config.scripts
    }
    doc["track_files"] = {
        f.name: {
            "file": f.path,
            "weight": f.weight,
            "reverse": f.reverse,
            **({"init_file": f.init_file} if f.init_file is not None else {}),
            "init_overwrite": f.init_overwrite,
        }
        for f in config.track_files
    }
    doc["vrrp_track_processes"] = {
        p.name: {
            "process": p.process,
            "args": list(p.args),
            "full_command": p.full_command,
            "param_match": p.param_match,
            "weight": p.weight,
            "reverse": p.reverse,
            "quorum": p.quorum,
            **({"quorum_max": p.quorum_max} if p.quorum_max else {}),
            "fork_delay_s": p.fork_delay_s,
            "terminate_delay_s": p.terminate_delay_s,
        }
        for p in config.track_processes
    }
    doc["vrrp_sync_groups"] = {s.name: _sync_group(s) for s in config.sync_groups}
    doc["vrrp_instances"] = {i.name: _instance(i) for i in config.instances}
    doc["static_ipaddress"] = [_vip(v) for v in config.static_ipaddresses]
    doc["static_routes"] = [_line(r) for r in config.static_routes]
    doc["static_rules"] = [_line(r) for r in config.static_rules]
    doc.update(lvs_to_yaml(config, _command))
    return {k: v for k, v in doc.items() if v}


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(to_yaml_dict(config), sort_keys=False, default_flow_style=False)


__all__ = ["dump_json", "dump_yaml", "strip_locations", "to_jsonable"]
