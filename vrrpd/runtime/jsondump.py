"""keepalived's JSON dump (SIGRTMIN+2, `keepalived --signum=JSON`): /tmp/keepalived.json.

One array of `{"data": {...}, "stats": {...}}` per VRRP instance with keepalived 2.2.7's keys,
in its order and with its number formats (read from the file Debian's keepalived wrote in a
namespace lab: tests/unit/data/keepalived-2.2.7/r1.json), so exporters that read it
(mehdy/keepalived-exporter, gen2brain/keepalived_exporter) work unchanged. Keys keepalived only
writes when they have a value (`script_*`, `evips`, `track_ifp`, `track_script`, `auth_data`)
are left out the same way. `master_priority` is the priority of the last advert a BACKUP took
from its master, 0 for a MASTER or an instance in FAULT, as keepalived writes it.
"""

from __future__ import annotations

import json
from typing import Any

from vrrpd.config.model import Config, InstanceConfig
from vrrpd.core.actions import State
from vrrpd.core.engine import Engine
from vrrpd.core.instance import Instance
from vrrpd.runtime.datadump import STATE_NUMBER, argv_text, vip_text

DEFAULT_JSON = "/tmp/keepalived.json"

_STATS_KEYS = (
    "advert_rcvd",
    "advert_sent",
    "become_master",
    "release_master",
    "packet_len_err",
    "advert_interval_err",
    "ip_ttl_err",
    "invalid_type_rcvd",
    "addr_list_err",
    "invalid_authtype",
    "authtype_mismatch",
    "auth_failure",
    "pri_zero_rcvd",
    "pri_zero_sent",
)
_SCRIPT_KEYS = (
    ("script_backup", "backup"),
    ("script_master", "master"),
    ("script_fault", "fault"),
    ("script_stop", "stop"),
    ("script_deleted", "deleted"),
    ("script_master_rx_lower_pri", "master_rx_lower_pri"),
    ("script", "generic"),
)


class Raw(str):
    """A number already written the way keepalived writes it (`%f`, `%g`)."""


def format_json(config: Config, engine: Engine, now: float, wall: float) -> str:
    """The whole file, one line as keepalived writes it (no spaces, `/` escaped, final LF)."""
    commands = {s.name: s.argv for s in config.scripts}
    items = [
        {"data": instance_data(inst, now, wall, commands), "stats": instance_stats(inst)}
        for inst in engine.instances.values()
    ]
    return _encode(items) + "\n"


def instance_data(
    inst: Instance, now: float, wall: float, commands: dict[str, tuple[str, ...]]
) -> dict[str, Any]:
    """keepalived `vrrp_json_data_dump`: the `data` object of one instance."""
    cfg = inst.cfg
    garp = cfg.garp
    at = inst.last_transition_at
    state = STATE_NUMBER.get(inst.state, 0)
    data: dict[str, Any] = {
        "iname": inst.name,
        "dont_track_primary": int(not cfg.track_primary),
        "skip_check_adv_addr": int(cfg.skip_check_adv_addr),
        "strict_mode": int(cfg.strict),
        "vmac_ifname": cfg.vmac.name if cfg.vmac is not None else "",
        "ifp_ifname": inst.interface,
        "master_priority": inst.master_priority if inst.state == State.BACKUP else 0,
        "last_transition": Raw(f"{wall + (at - now) if at is not None else 0.0:f}"),
        "garp_delay": _g(garp.master_delay_s),
        "garp_refresh": _g(garp.master_refresh_s),
        "garp_rep": garp.master_repeat,
        "garp_refresh_rep": garp.master_refresh_repeat,
        "garp_lower_prio_delay": _g(garp.lower_prio_delay_s),
        "garp_lower_prio_rep": garp.lower_prio_repeat,
        "lower_prio_no_advert": int(cfg.lower_prio_no_advert),
        "higher_prio_send_advert": int(cfg.higher_prio_send_advert),
        "vrid": cfg.vrid,
        "base_priority": inst.base_priority,
        "effective_priority": inst.effective_priority,
        "vipset": inst.state == State.MASTER,
        "promote_secondaries": cfg.promote_secondaries,
        "adver_int": _g(cfg.advert_int_cs / 100),
        "master_adver_int": _g(inst.master_adver_int_cs / 100),
        "accept": int(cfg.accept),
        "nopreempt": not cfg.preempt,
        "preempt_delay": _g(cfg.preempt_delay_s),
        "state": state,
        "wantstate": state,
        "version": cfg.version,
        "smtp_alert": cfg.smtp_alert,
        "notify_deleted": cfg.notify.deleted is not None,
    }
    data.update(_lists(inst, cfg, commands))
    data["auth_type"] = 0 if cfg.auth is None else (1 if cfg.auth.type.value == "PASS" else 2)
    if cfg.auth is not None:
        data["auth_data"] = cfg.auth.password.rstrip(b"\0").decode(errors="replace")
    return data


def instance_stats(inst: Instance) -> dict[str, int]:
    """The `stats` object: keepalived's fourteen counters (vrrpd's extra drop counters are in
    the SIGUSR2 file's neighbours, `vrrpctl status`, and the metrics, not here)."""
    counters = inst.stats.as_dict()
    return {key: counters.get(key, 0) for key in _STATS_KEYS}


def _lists(
    inst: Instance, cfg: InstanceConfig, commands: dict[str, tuple[str, ...]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, attr in _SCRIPT_KEYS:
        cmd = getattr(cfg.notify, attr)
        if cmd is not None:
            out[key] = argv_text(cmd.argv)
    installed = inst.state == State.MASTER
    out["vips"] = [vip_text(v, inst.interface, installed) for v in cfg.vips]
    if cfg.excluded_vips:
        out["evips"] = [vip_text(v, inst.interface, installed) for v in cfg.excluded_vips]
    if cfg.track_interfaces:
        out["track_ifp"] = [r.name for r in cfg.track_interfaces]
    if cfg.track_scripts:
        out["track_script"] = [
            argv_text(commands.get(r.name, (r.name,))) for r in cfg.track_scripts
        ]
    return out


def _g(value: float) -> Raw:
    return Raw(f"{value:g}")


def _encode(value: Any) -> str:
    """json.dumps without spaces, with keepalived's `\\/` and with `Raw` numbers unquoted."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_encode(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    return json.dumps(value).replace("/", "\\/")
