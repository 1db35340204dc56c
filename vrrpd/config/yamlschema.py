"""The YAML schema: each YAML key and the keepalived keyword it stands for
(docs/configuration-yaml.md)."""

from __future__ import annotations

from typing import Any

import yaml

YNode = yaml.Node
BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"
# (kind, keyword[, extra]) per YAML key; kinds are handled by `_Translator.entry`.
Spec = tuple[Any, ...]


def _kw(*names: str) -> dict[str, Spec]:
    return {n: ("kw", n) for n in names}


def _secs(*names: str) -> dict[str, Spec]:
    return {f"{n}_s": ("kw", n) for n in names}


NOTIFY = {
    k: ("cmd", k)
    for k in (
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify_deleted",
        "notify",
        "notify_master_rx_lower_pri",
    )
}
TRACKS = {
    k: ("list", k, "track")
    for k in ("track_interface", "track_script", "track_file", "track_process")
}
GLOBAL: dict[str, Spec] = {
    **_kw(
        "router_id",
        "vrrp_version",
        "vrrp_mcast_group4",
        "vrrp_mcast_group6",
        "vrrp_garp_master_repeat",
        "vrrp_garp_master_refresh_repeat",
        "vrrp_garp_lower_prio_repeat",
        "vrrp_lower_prio_no_advert",
        "vrrp_higher_prio_send_advert",
        "vrrp_down_timer_adverts",
        "vrrp_skip_check_adv_addr",
        "vrrp_check_unicast_src",
        "vrrp_strict",
        "v3_checksum_as_v2",
        "vrrp_min_garp",
        "vrrp_notify_priority_changes",
        "enable_script_security",
        "default_interface",
        "state_dump_file",
        "stats_dump_file",
        "json_dump_file",
        "vmac_prefix",
        "dynamic_interfaces",
        "log_unknown_vrids",
    ),
    **_secs(
        "vrrp_garp_master_delay",
        "vrrp_garp_master_refresh",
        "vrrp_garp_lower_prio_delay",
        "vrrp_garp_interval",
        "vrrp_gna_interval",
        "vrrp_startup_delay",
    ),
    "notify_fifo": ("fifo", "notify_fifo"),
    "vrrp_notify_fifo": ("fifo", "vrrp_notify_fifo"),
    "script_user": ("user", "script_user", "script_group"),
    "script_group": ("skip",),
}
INSTANCE: dict[str, Spec] = {
    **_kw(
        "state",
        "interface",
        "virtual_router_id",
        "priority",
        "version",
        "unicast_src_ip",
        "mcast_src_ip",
        "unicast_ttl",
        "mcast_dst_ip",
        "check_unicast_src",
        "garp_master_repeat",
        "garp_master_refresh_repeat",
        "garp_lower_prio_repeat",
        "lower_prio_no_advert",
        "higher_prio_send_advert",
        "down_timer_adverts",
        "skip_check_adv_addr",
        "v3_checksum_as_v2",
        "strict_mode",
        "notify_priority_changes",
        "smtp_alert",
    ),
    **_secs(
        "advert_int",
        "preempt_delay",
        "garp_master_delay",
        "garp_master_refresh",
        "garp_lower_prio_delay",
    ),
    "authentication": ("block", "authentication", _kw("auth_type", "auth_pass")),
    "virtual_ipaddress": ("list", "virtual_ipaddress", "vip"),
    "virtual_ipaddress_excluded": ("list", "virtual_ipaddress_excluded", "vip"),
    "no_virtual_ipaddress": ("flag", "no_virtual_ipaddress", None),
    "virtual_routes": ("list", "virtual_routes", "line"),
    "virtual_rules": ("list", "virtual_rules", "line"),
    "unicast_peer": ("list", "unicast_peer", "peer"),
    "preempt": ("flag", "preempt", "nopreempt"),
    "accept": ("flag", "accept", "no_accept"),
    "track_primary": ("flag", None, "dont_track_primary"),
    "promote_secondaries": ("flag", "promote_secondaries", None),
    "use_vmac": ("vmac", "use_vmac"),
    **TRACKS,
    **NOTIFY,
}
SCRIPT: dict[str, Spec] = {
    "script": ("cmd", "script"),
    **_kw("rise", "fall"),
    **_secs("interval", "timeout"),
    "weight": ("weight", "weight", "reverse"),
    "reverse": ("skip",),
    "user": ("user", "user", "group"),
    "group": ("skip",),
    "init_fail": ("flag", "init_fail", None),
}
TRACK_FILE: dict[str, Spec] = {
    "file": ("kw", "file"),
    "weight": ("weight", "weight", "reverse"),
    "reverse": ("skip",),
    "init_file": ("init_file", "init_file"),
    "init_overwrite": ("skip",),
}
PROCESS: dict[str, Spec] = {
    "process": ("process", "process"),
    "args": ("skip",),
    "param_match": ("kw", "param_match"),
    "full_command": ("flag", "full_command", None),
    "weight": ("weight", "weight", "reverse"),
    "reverse": ("skip",),
    **_kw("quorum", "quorum_max"),
    **_secs("fork_delay", "terminate_delay", "delay"),
}
SYNC_GROUP: dict[str, Spec] = {
    "group": ("list", "group", "word"),
    **TRACKS,
    **NOTIFY,
    **_kw("notify_priority_changes", "smtp_alert"),
    "sync_group_tracking_weight": ("flag", "sync_group_tracking_weight", None),
}
NAMED = {
    "vrrp_instances": ("vrrp_instance", INSTANCE),
    "vrrp_scripts": ("vrrp_script", SCRIPT),
    "track_files": ("track_file", TRACK_FILE),
    "vrrp_track_processes": ("vrrp_track_process", PROCESS),
    "vrrp_sync_groups": ("vrrp_sync_group", SYNC_GROUP),
}
STATIC = {"static_ipaddress": "vip", "static_routes": "line", "static_rules": "line"}
TOP_KEYS = ("global_defs", *NAMED, *STATIC)
VIP_VALUES = ("dev", "brd", "scope", "label", "peer", "preferred_lft", "track_group")
VIP_FLAGS = {
    "dad": "-nodad",
    "home": "home",
    "mngtmpaddr": "mngtmpaddr",
    "noprefixroute": "noprefixroute",
    "autojoin": "autojoin",
}
KEEPALIVED_HINTS = {
    "nopreempt": "use 'preempt: false'",
    "no_accept": "use 'accept: false'",
    "dont_track_primary": "use 'track_primary: false'",
    "vrrp_instance": "use 'vrrp_instances: {NAME: {...}}'",
    "vrrp_script": "use 'vrrp_scripts: {NAME: {...}}'",
}
