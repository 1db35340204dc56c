"""keepalived's SIGUSR1 (DATA) dump of the VRRP process: /tmp/keepalived.data.

The layout is Debian keepalived 2.2.7's, read line by line from the files it wrote in a
namespace lab (tests/unit/data/keepalived-2.2.7/, compared in tests/unit/test_dumps_golden.py):
the VRRP-relevant `Global definitions` lines, one `VRRP Topology` block per instance, the
`VRRP Sync groups` and the `VRRP Scripts`. keepalived's own lines about things vrrpd does not
have (LVS, SNMP, DBus, netlink buffers, socket fds, the sockpool and interface tables) are left
out, as is `Master priority` (the engine does not keep the master's priority). Exporters parse
the topology blocks (`State =`, `Interface =`, `Virtual Router ID =`, `Virtual IP (n):`) and the
scripts' `Status =`, which are all here with keepalived's exact texts.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any

from vrrpd.config.model import Command, Config, GarpSpec, InstanceConfig, ScriptSpec, VipSpec
from vrrpd.core.actions import State
from vrrpd.core.engine import Engine
from vrrpd.core.instance import Instance

DEFAULT_DATA = "/tmp/keepalived.data"

# keepalived's state numbers (vrrp.h), as the JSON dump and the exporters use them.
STATE_NUMBER = {State.INIT: 0, State.BACKUP: 1, State.MASTER: 2, State.FAULT: 3}
_NOTIFY_LABELS = (
    ("backup", "Backup"),
    ("master", "Master"),
    ("fault", "Fault"),
    ("stop", "Stop"),
    ("deleted", "Deleted"),
    ("master_rx_lower_pri", "Master rx lower pri"),
    ("generic", "Generic"),
)


def format_data(
    config: Config, engine: Engine, now: float, wall: float, scripts: Any = None
) -> str:
    """The whole dump; `now` is the engine's monotonic time and `wall` the epoch time then.

    `scripts` is the "trackers" service's `snapshot()` (None when there is no such service)."""
    lines = ["------< Global definitions >------", *global_lines(config)]
    lines.append("------< VRRP Topology >------")
    groups = {m: g.name for g in config.sync_groups for m in g.members}
    weights = {s.name: s.weight for s in config.scripts}
    for inst in engine.instances.values():
        link = engine.links.get(inst.interface)
        ifindex = link.ifindex if link is not None else 0
        member_of = groups.get(inst.name)
        lines += instance_lines(inst, member_of, now, wall, script_weights=weights, ifindex=ifindex)
    if config.sync_groups:
        lines.append("------< VRRP Sync groups >------")
        for group in config.sync_groups:
            members = [engine.instances[m] for m in group.members if m in engine.instances]
            lines += sync_group_lines(group.name, members)
    if config.scripts:
        lines.append("------< VRRP Scripts >------")
        results = script_results(scripts)
        for spec in config.scripts:
            lines += script_lines(spec, config, results.get(spec.name))
    return "".join(f"{line}\n" for line in lines)


def global_lines(config: Config) -> list[str]:
    """keepalived `dump_global_data`, the lines a VRRP-only daemon has values for."""
    g = config.global_defs
    uid, gid = _ids(g.script_user, g.script_group)
    return [
        f" Router ID = {g.router_id or socket.gethostname()}",
        f" Dynamic interfaces = {_bool(g.dynamic_interfaces)}",
        f" Default interface = {g.default_interface}",
        f" VRRP notify priority changes = {_bool(g.notify_priority_changes)}",
        f" VRRP IPv4 mcast group = {g.mcast_group4}",
        f" VRRP IPv6 mcast group = {g.mcast_group6}",
        f" Gratuitous ARP delay = {_num(g.garp.master_delay_s)}",
        f" Gratuitous ARP repeat = {g.garp.master_repeat}",
        f" Gratuitous ARP refresh timer = {_num(g.garp.master_refresh_s)}",
        f" Gratuitous ARP refresh repeat = {g.garp.master_refresh_repeat}",
        f" Gratuitous ARP lower priority delay = {_num(g.garp.lower_prio_delay_s)}",
        f" Gratuitous ARP lower priority repeat = {g.garp.lower_prio_repeat}",
        f" Num adverts before down = {g.down_timer_adverts}",
        f" Send advert after receive lower priority advert = {_bool(not g.lower_prio_no_advert)}",
        f" Send advert after receive higher priority advert = {_bool(g.higher_prio_send_advert)}",
        f" Gratuitous ARP interval = {g.garp.interval_s:f}",
        f" Gratuitous NA interval = {g.garp.na_interval_s:f}",
        f" VRRP default protocol version = {g.vrrp_version}",
        f" VRRP check unicast_src = {_bool(g.check_unicast_src)}",
        f" VRRP skip check advert addresses = {_bool(g.skip_check_adv_addr)}",
        f" VRRP strict mode = {_bool(g.strict)}",
        f" Script security {'enabled' if g.enable_script_security else 'disabled'}",
        f" Default script uid:gid {uid}:{gid}",
    ]


def instance_lines(
    inst: Instance,
    group: str | None,
    now: float,
    wall: float,
    *,
    script_weights: Mapping[str, int] | None = None,
    ifindex: int = 0,
) -> list[str]:
    """keepalived `dump_vrrp`: one ` VRRP Instance = NAME` block; `script_weights` are the
    `vrrp_script` weights a `track_script` entry without its own weight uses, `ifindex` is the
    interface's as netlink reported it."""
    cfg = inst.cfg
    backup = inst.state == State.BACKUP
    lines = [f" VRRP Instance = {inst.name}", f"   VRRP Version = {cfg.version}"]
    if group:
        lines.append(f"   Sync group = {group}")
    if cfg.family == 6:
        lines.append("   Using Native IPv6")
    lines.append(f"   State = {inst.state.value}")
    if backup and inst.master_addr is not None:
        lines.append(f"   Master router = {inst.master_addr}")
        lines.append(f"   Master priority = {inst.master_priority}")
    if backup and cfg.version == 3:
        lines.append(f"   Master advert int = {inst.master_adver_int_cs / 100:.2f} sec")
    lines += _flags(cfg)
    deadline = inst.next_deadline() if inst.state in (State.BACKUP, State.MASTER) else None
    lines += [
        f"   Wantstate = {inst.state.value}",
        "   Number of config faults = 0",
        f"   Number of interface and track script faults = {len(inst.faults)}",
        "   Number of track scripts init = 0",
        f"   Last transition = {_stamp(inst.last_transition_at, now, wall)}",
        f"   Read timeout = {_stamp(deadline, now, wall)}",
        f"   Master down timer = {int(inst.master_down_interval_s() * 1e6)} usecs",
        f"   Interface = {inst.interface}",
        f"   Using src_ip = {_src(inst)}",
    ]
    if not cfg.unicast:
        lines.append(f"   Multicast address {_group(inst.cfg, ifindex)}")
    lines += _timers(cfg)
    lines += _priorities(inst, backup)
    lines += _addresses(inst)
    lines += _tracking(cfg, script_weights or {})
    lines += ["   Using smtp notification = no", f"   Notify deleted = {_deleted(cfg)}"]
    lines += _notify_scripts(cfg)
    lines.append(f"   Notify priority changes = {_bool(cfg.notify_priority_changes)}")
    return lines


def sync_group_lines(name: str, members: list[Instance]) -> list[str]:
    """` VRRP Sync Group = NAME, STATE` and its members."""
    states = {m.state for m in members}
    state = next((s for s in (State.FAULT, State.INIT, State.BACKUP) if s in states), None)
    faults = sum(1 for m in members if m.state == State.FAULT)
    inits = sum(1 for m in members if m.state == State.INIT)
    return [
        f" VRRP Sync Group = {name}, {(state or State.MASTER).value}",
        f"   Num member fault {faults}, num member init {inits}",
        "   VRRP member instances :",
        *(f"     {m.name}" for m in members),
        "   Using smtp notification = no",
    ]


def script_lines(spec: ScriptSpec, config: Config, good: bool | None) -> list[str]:
    """` VRRP Script = NAME` (keepalived `dump_vscript`); status from the trackers service."""
    uid, gid = _ids(spec.user or config.global_defs.script_user, spec.group)
    tracking = [
        f"     {inst.name}, weight {spec.weight if ref.weight is None else ref.weight}"
        for inst in config.instances
        for ref in inst.track_scripts
        if ref.name == spec.name
    ]
    status = "unknown" if good is None else ("GOOD" if good else "BAD")
    return [
        f" VRRP Script = {spec.name}",
        f"   Command = {_argv(spec.argv)}",
        f"   Interval = {int(spec.interval_s)} sec",
        f"   Timeout = {int(spec.timeout_s)} sec",
        f"   Weight = {spec.weight}",
        f"   Rise = {spec.rise}",
        f"   Fall = {spec.fall}",
        f"   Result = {int(bool(good))}",
        "   Insecure = no",
        "   Init state = unknown",
        f"   Status = {status}",
        f"   Script uid:gid = {uid}:{gid}",
        "   VRRP instances :",
        "   Tracking instances :",
        *tracking,
        "   State = idle",
    ]


def vip_text(vip: VipSpec, iface: str, installed: bool) -> str:
    """One address as keepalived prints it in both dumps: `IP/LEN dev IF scope S [label L]`
    (IPv6 adds `preferred_lft`), with ` set` while it is on the interface."""
    words = [str(vip.address), "dev", vip.dev or iface, "scope", vip.scope or "global"]
    if vip.label:
        words += ["label", vip.label]
    if vip.address.version == 6:
        lft = vip.preferred_lft
        words += ["preferred_lft", "forever" if lft is None else str(lft)]
    if installed:
        words.append("set")
    return " ".join(words)


def script_results(snapshot: Any) -> dict[str, bool | None]:
    """Script name -> GOOD (True) / BAD (False) / unknown (None) from the "trackers" service's
    `snapshot()`: a mapping of name to entry or a list of entries, each a mapping or an object
    with a `status`/`state` ("GOOD"/"BAD"/"UP"/"DOWN"...) or an `ok`/`good`/`up` flag."""
    if snapshot is None:
        return {}
    if isinstance(snapshot, Mapping):
        pairs: Iterable[tuple[Any, Any]] = snapshot.items()
    else:
        pairs = ((_field(e, "name"), e) for e in snapshot)
    return {
        str(name): _good(entry)
        for name, entry in pairs
        if name and _field(entry, "type") in (None, "script")
    }


def argv_text(argv: tuple[str, ...]) -> str:
    return _argv(argv)


# -- the parts of an instance block --------------------------------------------------------------


def _flags(cfg: InstanceConfig) -> list[str]:
    # keepalived prints "none" only when no flag bit is set; nopreempt is a bit it does not name.
    if cfg.unicast:
        return ["   Flags:", "     Using unicast"]
    return ["   Flags:"] if not cfg.preempt else ["   Flags: none"]


def _timers(cfg: InstanceConfig) -> list[str]:
    garp: GarpSpec = cfg.garp
    lower, higher = _bool(not cfg.lower_prio_no_advert), _bool(cfg.higher_prio_send_advert)
    return [
        f"   Gratuitous ARP delay = {_num(garp.master_delay_s)}",
        f"   Gratuitous ARP repeat = {garp.master_repeat}",
        f"   Gratuitous ARP refresh = {_num(garp.master_refresh_s)}",
        f"   Gratuitous ARP refresh repeat = {garp.master_refresh_repeat}",
        f"   Gratuitous ARP lower priority delay = {_num(garp.lower_prio_delay_s)}",
        f"   Gratuitous ARP lower priority repeat = {garp.lower_prio_repeat}",
        f"   Down timer adverts = {cfg.down_timer_adverts}",
        f"   Send advert after receive lower priority advert = {lower}",
        f"   Send advert after receive higher priority advert = {higher}",
        f"   Virtual Router ID = {cfg.vrid}",
    ]


def _priorities(inst: Instance, backup: bool) -> list[str]:
    cfg = inst.cfg
    lines = [
        f"   Priority = {inst.base_priority}",
        f"   Effective priority = {inst.effective_priority}",
        f"   Total priority = {inst.effective_priority}",
        f"   Advert interval = {_interval(cfg.version, cfg.advert_int_cs)}",
    ]
    if backup and cfg.version == 3:
        lines.append(f"   Master advert interval = {inst.master_adver_int_cs * 10} milli-sec")
    lines += [
        f"   Accept = {_enabled(cfg.accept)}",
        f"   Preempt = {_enabled(cfg.preempt)}",
    ]
    if cfg.preempt_delay_s:
        lines.append(f"   Preempt delay = {_num(cfg.preempt_delay_s)} secs")
    lines.append(f"   Promote_secondaries = {_enabled(cfg.promote_secondaries)}")
    if cfg.version == 2:
        if cfg.auth is None:
            lines.append("   Authentication type = none")
        else:
            kind = "SIMPLE_PASSWORD" if cfg.auth.type.value == "PASS" else "IPSEC_AH"
            password = cfg.auth.password.rstrip(b"\0").decode(errors="replace")
            lines += [f"   Authentication type = {kind}", f"   Password = {password}"]
    return lines


def _addresses(inst: Instance) -> list[str]:
    cfg = inst.cfg
    installed = inst.state == State.MASTER
    lines = []
    if cfg.vips:
        lines.append(f"   Virtual IP ({len(cfg.vips)}):")
        lines += [f"     {vip_text(v, inst.interface, installed)}" for v in cfg.vips]
    if cfg.excluded_vips:
        lines.append("   Virtual IP Excluded :")
        lines += [f"     {vip_text(v, inst.interface, installed)}" for v in cfg.excluded_vips]
    if cfg.unicast:
        ttl = cfg.unicast_ttl if cfg.unicast_ttl is not None else 255
        lines += [
            f"   Unicast TTL = {ttl}",
            f"   Check unicast src : {'yes' if cfg.check_unicast_src else 'no'}",
            "   Unicast Peer :",
        ]
        for peer in cfg.unicast_peers:
            low = peer.min_ttl or 0
            high = peer.max_ttl if peer.max_ttl is not None else 255
            lines.append(f"     {peer.address} min_ttl {low} max_ttl {high}")
        lines.append("   Unicast checksum compatibility = no")
    return lines


def _tracking(cfg: InstanceConfig, script_weights: Mapping[str, int]) -> list[str]:
    lines = []
    for title, refs in (
        ("Tracked interfaces", cfg.track_interfaces),
        ("Tracked scripts", cfg.track_scripts),
        ("Tracked files", cfg.track_files),
        ("Tracked processes", cfg.track_processes),
    ):
        if refs:
            lines.append(f"   {title} :")
            for ref in refs:
                weight = ref.weight
                if weight is None:
                    weight = script_weights.get(ref.name, 0) if refs is cfg.track_scripts else 0
                reverse = " reverse" if ref.reverse else ""
                lines.append(f"     {ref.name} weight {weight}{reverse}")
    return lines


def _notify_scripts(cfg: InstanceConfig) -> list[str]:
    lines = []
    for attr, label in _NOTIFY_LABELS:
        cmd: Command | None = getattr(cfg.notify, attr)
        if cmd is not None:
            uid, gid = _ids(cmd.user, cmd.group)
            lines.append(
                f"   {label} state transition script = {_argv(cmd.argv)}, uid:gid {uid}:{gid}"
            )
    return lines


# -- value formats -------------------------------------------------------------------------------


def _stamp(at: float | None, now: float, wall: float) -> str:
    """`1795550149.578930 (Tue Nov 24 19:55:49.578930 2026)`; DISABLED when there is no time."""
    if at is None:
        return "DISABLED"
    epoch = wall + (at - now)
    secs, usecs = int(epoch), round((epoch - int(epoch)) * 1e6) % 1000000
    local = time.localtime(secs)
    clock = time.strftime("%a %b %e %H:%M:%S", local)
    return f"{secs}.{usecs:06d} ({clock}.{usecs:06d} {local.tm_year})"


def _src(inst: Instance) -> str:
    if inst.cfg.src_ip is not None:
        return f"{inst.cfg.src_ip} (from configuration)"
    return str(inst.link_src) if inst.link_src is not None else "(none)"


def _group(cfg: InstanceConfig, ifindex: int) -> str:
    group = cfg.mcast_group or ("ff02::12" if cfg.family == 6 else "224.0.0.18")
    return f"{group}, ifindex {ifindex}" if cfg.family == 6 else str(group)


def _interval(version: int, cs: int) -> str:
    return f"{cs * 10} milli-sec" if version == 3 else f"{cs // 100} sec"


def _deleted(cfg: InstanceConfig) -> str:
    return "Deleted" if cfg.notify.deleted is not None else "Fault"


def _argv(argv: tuple[str, ...]) -> str:
    """keepalived quotes each word and shows the command's real path (`/bin/true` is
    `'/usr/bin/true'` on a merged-/usr system)."""
    if not argv:
        return ""
    first = os.path.realpath(argv[0]) if argv[0].startswith("/") else argv[0]
    return " ".join(f"'{w}'" for w in (first, *argv[1:]))


def _ids(user: str | None, group: str | None) -> tuple[int, int]:
    """uid:gid of a script user; keepalived's default is `keepalived_script`, else root."""
    try:
        entry = pwd.getpwnam(user or "keepalived_script")
        uid, gid = entry.pw_uid, entry.pw_gid
    except KeyError:
        uid, gid = 0, 0
    if group:
        with contextlib.suppress(KeyError):
            gid = grp.getgrnam(group).gr_gid
    return uid, gid


def _num(value: float) -> str:
    return f"{value:g}"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _enabled(value: bool) -> str:
    return "enabled" if value else "disabled"


def _field(entry: Any, name: str) -> Any:
    return entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, None)


def _good(entry: Any) -> bool | None:
    if isinstance(entry, bool):
        return entry
    for key in ("status", "state", "ok", "good", "up", "result"):
        value = _field(entry, key)
        if isinstance(value, bool):
            return value
        text = str(getattr(value, "value", value) or "").upper()
        if text in ("GOOD", "OK", "UP", "SUCCESS", "PASS"):
            return True
        if text in ("BAD", "FAIL", "FAILED", "FAILURE", "DOWN", "FAULT"):
            return False
    return None
