"""The keepalived.conf front-end: text -> token lines -> keyword tree -> frozen `Config`.

Top-level blocks follow man keepalived.conf: `global_defs`, `vrrp_instance`, `vrrp_sync_group`,
`vrrp_script`, `track_file`, `vrrp_track_process`, `static_ipaddress`, `static_routes`,
`static_rules`, and the LVS side `virtual_server_group`, `virtual_server` (`config.lvs`) and
`SSL` (`config.lvsssl`). Other keepalived blocks vrrpd does not implement are skipped with a
warning each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from vrrpd.config.addresses import parse_route, parse_rule, parse_vip
from vrrpd.config.diag import Problems, did_you_mean
from vrrpd.config.globaldefs import parse_global_defs
from vrrpd.config.instance import parse_instance
from vrrpd.config.lexer import Node, build_tree
from vrrpd.config.lvs import parse_lvs
from vrrpd.config.lvscheck import LvsShared
from vrrpd.config.lvsssl import parse_ssl
from vrrpd.config.model import Config, GlobalDefs
from vrrpd.config.preprocess import Preprocessor
from vrrpd.config.source import Source
from vrrpd.config.trackers import (
    parse_script,
    parse_sync_group,
    parse_track_file,
    parse_track_process,
)
from vrrpd.config.validate import validate
from vrrpd.config.values import Ctx

LVS_BLOCKS = frozenset({"virtual_server", "virtual_server_group", "SSL"})
OTHER_BLOCKS = frozenset(
    {
        "bfd_instance",
        "garp_group",
        "linkbeat_interfaces",
        "net_namespace",
        "net_namespace_ipvs",
        "use_pid_dir",
        "instance",
        "namespace_with_ipsets",
        "track_bfd",
        "vrrp_track_bfd",
        "lvs_sync_daemon_interface",
    }
)
Parser = Callable[[Node, Ctx], Any]
TRACKERS: dict[str, tuple[str, Parser]] = {
    "vrrp_script": ("scripts", parse_script),
    "track_file": ("track_files", parse_track_file),
    "vrrp_track_file": ("track_files", parse_track_file),
    "vrrp_track_process": ("track_processes", parse_track_process),
    "vrrp_sync_group": ("sync_groups", parse_sync_group),
}
STATIC = {
    "static_ipaddress": ("static_ipaddresses", parse_vip),
    "static_routes": ("static_routes", parse_route),
    "static_rules": ("static_rules", parse_rule),
}
KNOWN = frozenset({"global_defs", "vrrp_instance", *TRACKERS, *STATIC, *LVS_BLOCKS, *OTHER_BLOCKS})


def parse_keepalived(
    path: str, source: Source, config_id: str, problems: Problems
) -> Config | None:
    """Read `path` (and its includes) as keepalived.conf; None when nothing could be read."""
    pre = Preprocessor(source, config_id, problems)
    lines = pre.run(path)
    if not pre.files:
        return None
    nodes = build_tree(lines, problems)
    return build_config(nodes, problems, tuple(pre.files))


def build_config(nodes: list[Node], problems: Problems, files: tuple[str, ...] = ()) -> Config:
    """The keyword tree into a validated `Config` (also used by the YAML front-end)."""
    ctx = Ctx(problems)
    lists: dict[str, list[Any]] = {}
    global_defs = parse_global_defs([n for n in nodes if n.name == "global_defs"], ctx)
    lvs: dict[str, list[Node]] = {name: [] for name in LVS_BLOCKS}
    for node in nodes:
        if node.name in TRACKERS:
            field, parser = TRACKERS[node.name]
            _append(lists, field, parser(node, ctx))
        elif node.name in STATIC:
            field, line_parser = STATIC[node.name]
            for child in ctx.block(node):
                _append(lists, field, line_parser(child, ctx, node.name))
        elif node.name == "vrrp_instance":
            _append(lists, "instances", parse_instance(node, global_defs, ctx))
        elif node.name in LVS_BLOCKS:
            lvs[node.name].append(node)
        elif node.name in OTHER_BLOCKS:
            ctx.warn(node.loc, f"'{node.name}' is not supported by vrrpd (ignored)")
        elif node.name != "global_defs":
            hint = did_you_mean(node.name, KNOWN)
            if node.name.startswith("include"):
                hint = "an include line cannot start with @ or use macros"
            ctx.warn(node.loc, f"unknown top-level keyword '{node.name}' (ignored)", hint)
    static = _static_defaults(lists.pop("static_ipaddresses", []), global_defs)
    tracked = {f.name: f for f in reversed(lists.get("track_files", []))}  # the first wins
    shared = LvsShared(parse_ssl(lvs["SSL"], ctx), tracked)
    servers, groups = parse_lvs(lvs["virtual_server"], lvs["virtual_server_group"], ctx, shared)
    config = Config(
        global_defs=global_defs,
        static_ipaddresses=tuple(static),
        source_files=files,
        virtual_servers=servers,
        virtual_server_groups=groups,
        **{k: tuple(v) for k, v in lists.items()},
    )
    return validate(config, ctx)


def _append(lists: dict[str, list[Any]], field: str, item: object) -> None:
    if item is not None:
        lists.setdefault(field, []).append(item)


def _static_defaults(vips: list[Any], g: GlobalDefs) -> list[Any]:
    """`static_ipaddress` lines without `dev` go on `default_interface` (man5)."""
    return [v if v.dev else replace(v, dev=g.default_interface) for v in vips]
