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
        "fifo_write_vrrp_states_on_reload",
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
    "lvs_notify_fifo": ("fifo", "lvs_notify_fifo"),
    "lvs_sync_daemon": ("words", "lvs_sync_daemon"),
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
# -- LVS (keepalived `virtual_server_group`, `virtual_server`, `real_server`, checkers) --------
LVS_TIMING: dict[str, Spec] = {
    **_secs("connect_timeout", "delay_before_retry", "warmup", "delay_loop"),
    **_kw("retry", "alpha"),
}
CONNECTION: dict[str, Spec] = _kw(
    "connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark", "log_all_failures"
)
URL: dict[str, Spec] = {
    **_kw("path", "digest", "virtualhost", "regex", "regex_min_offset", "regex_max_offset"),
    "status_code": ("words", None),
    "regex_no_match": ("flag", "regex_no_match", None),
    "regex_options": ("words", "regex_options"),
    "regex_stack": ("words", "regex_stack"),
}
HTTP: dict[str, Spec] = {
    **CONNECTION,
    **LVS_TIMING,
    "url": ("blocks", "url", URL),
    **_kw("http_protocol", "virtualhost", "fast_recovery", "enable_sni", "sni_name"),
}
CHECKERS: dict[str, dict[str, Spec]] = {
    "TCP_CHECK": {**CONNECTION, **LVS_TIMING},
    "PING_CHECK": {**CONNECTION, **LVS_TIMING},
    "HTTP_GET": HTTP,
    "SSL_GET": HTTP,
    "DNS_CHECK": {**CONNECTION, **LVS_TIMING, **_kw("type", "name")},
    "SMTP_CHECK": {**CONNECTION, **LVS_TIMING, **_kw("helo_name")},
    "MISC_CHECK": {
        **{k: v for k, v in LVS_TIMING.items() if k != "connect_timeout_s"},
        "misc_path": ("cmd", "misc_path"),
        **_secs("misc_timeout"),
        **_kw("misc_dynamic", "log_all_failures"),
        "user": ("user", "user", "group"),
        "group": ("skip",),
    },
    "UDP_CHECK": {
        **CONNECTION,
        **LVS_TIMING,
        "payload": ("words", "payload"),
        "require_reply": ("flag", "require_reply", None),
        "reply": ("words", "require_reply"),  # require_reply HEX_STR
        **_kw("min_reply_length", "max_reply_length"),
    },
    "FILE_CHECK": {
        "track_file": ("kw", "track_file"),
        "weight": ("weight", "weight", "reverse"),
        "reverse": ("skip",),
        "dynamic": ("flag", "dynamic", None),
    },
}
REAL_SERVER: dict[str, Spec] = {
    "address": ("skip",),
    "port": ("skip",),
    **_kw("weight", "uthreshold", "lthreshold", "inhibit_on_failure", "virtualhost"),
    "lvs_method": ("words", "lvs_method"),
    "notify_up": ("cmd", "notify_up"),
    "notify_down": ("cmd", "notify_down"),
    **LVS_TIMING,
    "checkers": ("checkers", None),
}
VIRTUAL_SERVER: dict[str, Spec] = {
    **dict.fromkeys(("address", "port", "fwmark", "group"), ("skip",)),
    **_kw("lvs_sched", "protocol", "persistence_timeout", "persistence_granularity",
          "persistence_engine", "quorum", "hysteresis", "alpha", "omega", "ha_suspend", "ops",
          "inhibit_on_failure", "virtualhost", "ip_family"),
    "sched_flags": ("flags", None),
    "lvs_method": ("words", "lvs_method"),
    "quorum_up": ("cmd", "quorum_up"),
    "quorum_down": ("cmd", "quorum_down"),
    "sorry_server": ("words", "sorry_server"),
    "sorry_server_lvs_method": ("words", "sorry_server_lvs_method"),
    "sorry_server_inhibit": ("flag", "sorry_server_inhibit", None),
    **LVS_TIMING,
    "real_servers": ("servers", "real_server", REAL_SERVER),
}  # fmt: skip
SSL: dict[str, Spec] = _kw("password", "ca", "certificate", "key")  # the top-level `SSL {}`
LVS_TOP = ("virtual_server_groups", "virtual_servers", "ssl")
TOP_KEYS = ("global_defs", *NAMED, *STATIC, *LVS_TOP)
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
    "virtual_server": "use 'virtual_servers: [{address: IP, port: N, ...}]'",
    "virtual_server_group": "use 'virtual_server_groups: {NAME: [IP PORT, ...]}'",
    "real_server": "use 'real_servers: [{address: IP, port: N, ...}]'",
}
