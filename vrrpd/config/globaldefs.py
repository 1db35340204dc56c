"""keepalived `global_defs {}`: the VRRP-relevant keywords (man keepalived.conf "Global
definitions") and `lvs_sync_daemon`; e-mail, other LVS, SNMP, DBus and scheduling keywords are
accepted with a warning.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vrrpd.config.lexer import Node, Token
from vrrpd.config.model import FifoSpec, GarpSpec, GlobalDefs, LvsSyncDaemonSpec
from vrrpd.config.trackers import parse_command
from vrrpd.config.values import (
    Ctx,
    Draft,
    Handler,
    bool_kw,
    deprecated_kw,
    dispatch,
    int_kw,
    ip_kw,
    seconds_kw,
    str_kw,
    unsupported_kw,
)

DAY = 86400.0


def garp_kw(field: str, kind: str) -> Handler:
    """A `garp_*` keyword: seconds or a count, into `draft["garp"][field]`."""
    inner = seconds_kw(field, 0, DAY) if kind == "s" else int_kw(field, 0, 10_000)

    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        inner(d.setdefault("garp", {}), node, ctx)

    return handle


GARP_GLOBALS = {
    "vrrp_garp_master_delay": garp_kw("master_delay_s", "s"),
    "vrrp_garp_master_repeat": garp_kw("master_repeat", "n"),
    "vrrp_garp_master_refresh": garp_kw("master_refresh_s", "s"),
    "vrrp_garp_master_refresh_repeat": garp_kw("master_refresh_repeat", "n"),
    "vrrp_garp_lower_prio_delay": garp_kw("lower_prio_delay_s", "s"),
    "vrrp_garp_lower_prio_repeat": garp_kw("lower_prio_repeat", "n"),
    "vrrp_garp_interval": garp_kw("interval_s", "s"),
    "vrrp_gna_interval": garp_kw("na_interval_s", "s"),
}


def _min_garp(d: Draft, node: Node, ctx: Ctx) -> None:
    """`vrrp_min_garp`: one GARP, no second burst (only where still at the defaults)."""
    value = ctx.bool_(node)
    if value:
        d["min_garp"] = node.loc


FIFO_FIELDS = ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo")


def fifo_kw(field: str) -> Handler:
    """`notify_fifo FIFO [user [group]]` (and `vrrp_notify_fifo`, `lvs_notify_fifo`)."""

    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        if ctx.nargs(node, 1, 3, "PATH [USER [GROUP]]"):
            words = [a.text for a in node.args]
            fifo = d.get(field) or FifoSpec(path=words[0])
            user = words[1] if len(words) > 1 else None
            group = words[2] if len(words) > 2 else None
            d[field] = replace(fifo, path=words[0], user=user, group=group)

    return handle


def fifo_script_kw(field: str) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        cmd = parse_command(node, ctx)
        if cmd is not None:
            d[f"{field}_script"] = cmd

    return handle


def _script_user(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 2, "USER [[:]GROUP]"):
        user, _, group = node.args[0].text.partition(":")
        d["script_user"] = user
        d["script_group"] = node.args[1].text.lstrip(":") if len(node.args) > 1 else group or None


SYNCD_USAGE = "IF [[inst] VRRP_INSTANCE] [id 0..255] [maxlen N] [port N] [ttl N] [group IP]"
SYNCD_INTS = {"id": ("sync_id", 0, 255), "maxlen": ("maxlen", 1, 65507),
              "port": ("port", 1, 65535), "ttl": ("ttl", 1, 255)}  # fmt: skip
SYNCD_WORDS = (*SYNCD_INTS, "group", "inst")


def _lvs_sync_daemon(d: Draft, node: Node, ctx: Ctx) -> None:
    """keepalived `lvs_sync_daemon` (man keepalived.conf, global definitions)."""
    if not ctx.nargs(node, 1, None, SYNCD_USAGE):
        return
    words = list(node.args[1:])
    instance = None
    if words and words[0].text not in SYNCD_WORDS:
        instance = words.pop(0).text  # `inst` may be omitted (keepalived's older syntax)
    values: dict[str, Any] = {}
    for word, value in zip(words[::2], [*words[1::2], None], strict=False):
        if word.text not in SYNCD_WORDS:
            ctx.error(word.loc, f"unknown lvs_sync_daemon option '{word.text}'",
                      f"usage: lvs_sync_daemon {SYNCD_USAGE}")  # fmt: skip
            return
        if value is None:
            ctx.error(word.loc, f"lvs_sync_daemon '{word.text}' needs a value")
            return
        got = _syncd_value(word.text, value, ctx)
        if got is None:
            return
        values[got[0]] = got[1]
    instance = values.pop("instance", instance)
    d["lvs_sync_daemon"] = LvsSyncDaemonSpec(node.args[0].text, instance, location=node.loc,
                                             **values)  # fmt: skip


def _syncd_value(word: str, value: Token, ctx: Ctx) -> tuple[str, object] | None:
    if word == "inst":
        return "instance", value.text
    if word == "group":
        addr = ctx.ip(value, "lvs_sync_daemon group")
        if addr is not None and not addr.is_multicast:
            ctx.error(value.loc, f"lvs_sync_daemon group {addr} is not a multicast address")
            return None
        return None if addr is None else ("group", addr)
    field, lo, hi = SYNCD_INTS[word]
    number = ctx.int_(value, lo, hi, f"lvs_sync_daemon {word}")
    return None if number is None else (field, number)


_EMAIL = unsupported_kw("accepted but e-mail alerts are not supported by vrrpd")
_NOT_VRRP = unsupported_kw("not used by vrrpd")
GLOBAL_HANDLERS: dict[str, Handler] = {
    "router_id": str_kw("router_id"),
    "vrrp_version": int_kw("vrrp_version", 2, 3),
    "vrrp_mcast_group4": ip_kw("mcast_group4", 4),
    "vrrp_mcast_group6": ip_kw("mcast_group6", 6),
    **GARP_GLOBALS,
    "vrrp_min_garp": _min_garp,
    "vrrp_lower_prio_no_advert": bool_kw("lower_prio_no_advert"),
    "vrrp_higher_prio_send_advert": bool_kw("higher_prio_send_advert"),
    "vrrp_down_timer_adverts": int_kw("down_timer_adverts", 1, 100),
    "vrrp_skip_check_adv_addr": bool_kw("skip_check_adv_addr"),
    "vrrp_check_unicast_src": bool_kw("check_unicast_src"),
    "vrrp_strict": bool_kw("strict"),
    "v3_checksum_as_v2": bool_kw("v3_checksum_as_v2"),
    "notify_fifo": fifo_kw("notify_fifo"),
    "notify_fifo_script": fifo_script_kw("notify_fifo"),
    "vrrp_notify_fifo": fifo_kw("vrrp_notify_fifo"),
    "vrrp_notify_fifo_script": fifo_script_kw("vrrp_notify_fifo"),
    "lvs_notify_fifo": fifo_kw("lvs_notify_fifo"),
    "lvs_notify_fifo_script": fifo_script_kw("lvs_notify_fifo"),
    "vrrp_notify_priority_changes": bool_kw("notify_priority_changes"),
    "script_user": _script_user,
    "enable_script_security": bool_kw("enable_script_security"),
    "vrrp_startup_delay": seconds_kw("startup_delay_s", 0, DAY),
    "vrrp_delay_after_boot": seconds_kw("startup_delay_s", 0, DAY),
    "default_interface": str_kw("default_interface"),
    "state_dump_file": str_kw("state_dump_file"),
    "stats_dump_file": str_kw("stats_dump_file"),
    "json_dump_file": str_kw("json_dump_file"),
    "state_dump_file_location": deprecated_kw(str_kw("state_dump_file"), "state_dump_file"),
    "stats_dump_file_location": deprecated_kw(str_kw("stats_dump_file"), "stats_dump_file"),
    "json_dump_file_location": deprecated_kw(str_kw("json_dump_file"), "json_dump_file"),
    "vmac_prefix": str_kw("vmac_prefix"),
    "dynamic_interfaces": bool_kw("dynamic_interfaces"),
    "fifo_write_vrrp_states_on_reload": bool_kw("fifo_write_states_on_reload"),
    "log_unknown_vrids": bool_kw("log_unknown_vrids"),
    "lvs_sync_daemon": _lvs_sync_daemon,
    **dict.fromkeys(
        (
            "notification_email",
            "notification_email_from",
            "smtp_server",
            "smtp_connect_timeout",
            "smtp_helo_name",
            "smtp_alert",
            "smtp_alert_vrrp",
            "smtp_alert_checker",
            "no_email_faults",
            "no_checker_emails",
        ),
        _EMAIL,
    ),
    **dict.fromkeys(
        (
            "lvs_id",
            "lvs_flush",
            "lvs_flush_on_stop",
            "lvs_timeouts",
            "checker_process_name",
            "bfd_process_name",
            "enable_snmp_vrrp",
            "enable_snmp_checker",
            "enable_snmp_rfc",
            "enable_snmp_rfcv2",
            "enable_snmp_rfcv3",
            "enable_traps",
            "snmp_socket",
            "enable_dbus",
            "dbus_service_name",
            "vrrp_iptables",
            "vrrp_ipsets",
            "nftables",
            "nftables_priority",
            "nftables_ifindex",
            "nftables_counters",
            "vrrp_priority",
            "vrrp_no_swap",
            "vrrp_rt_priority",
            "vrrp_cpu_affinity",
            "vrrp_rlimit_rttime",
            "checker_priority",
            "checker_no_swap",
            "checker_rt_priority",
            "bfd_priority",
            "bfd_no_swap",
            "bfd_rt_priority",
            "max_auto_priority",
            "min_auto_priority_delay",
            "vrrp_process_name",
            "process_names",
            "process_name",
            "net_namespace",
            "net_namespace_ipvs",
            "namespace_with_ipsets",
            "instance",
            "use_pid_dir",
            "reload_check_config",
            "reload_file",
            "reload_time_file",
            "reload_repeat",
            "vrrp_garp_extra_if",
            "vmac_addr_prefix",
            "vrrp_netlink_cmd_rcv_bufs",
            "vrrp_netlink_cmd_rcv_bufs_force",
            "vrrp_netlink_monitor_rcv_bufs",
            "vrrp_netlink_monitor_rcv_bufs_force",
            "vrrp_rx_bufs_policy",
            "vrrp_rx_bufs_multiplier",
            "disable_local_igmp",
            "random_seed",
            "umask",
            "child_wait_time",
            "startup_script",
            "shutdown_script",
            "config_save_dir",
            "tmp_config_directory",
            "data_use_instance",
            "json_version",
            "linkbeat_use_polling",
            "rs_init_notifies",
            "checker_log_all_failures",
            "include_check",
            "script_security",
        ),
        _NOT_VRRP,
    ),
}


def parse_global_defs(nodes: list[Node], ctx: Ctx) -> GlobalDefs:
    """All `global_defs {}` blocks (keepalived merges repeated blocks) into `GlobalDefs`."""
    d: Draft = {}
    for node in nodes:
        ctx.nargs(node, 0, 0, "{ ... }")
        dispatch("global_defs", ctx.block(node), GLOBAL_HANDLERS, d, ctx)
    garp = d.pop("garp", {})
    for field, base in (
        ("lower_prio_delay_s", "master_delay_s"),
        ("lower_prio_repeat", "master_repeat"),
    ):
        if field not in garp and base in garp:  # keepalived: lower_prio_* default to master_*
            garp[field] = garp[base]
    if d.pop("min_garp", None) is not None:
        garp.setdefault("master_repeat", 1)
        garp.setdefault("master_delay_s", 0.0)
        garp.setdefault("lower_prio_repeat", 1)
        garp.setdefault("lower_prio_delay_s", 0.0)
    if d.get("strict"):
        d.setdefault("lower_prio_no_advert", True)  # vrrp_strict implies it (man5)
    for field in FIFO_FIELDS:
        script = d.pop(f"{field}_script", None)
        if script is not None and field not in d:
            ctx.error(
                script.location,
                f"'{field}_script' without '{field}'",
                f"add: {field} /run/keepalived.fifo",
            )
        elif script is not None:
            d[field] = replace(d[field], script=script)
    return GlobalDefs(garp=GarpSpec(**garp), **d)
