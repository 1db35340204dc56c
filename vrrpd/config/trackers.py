"""Trackers and commands: `vrrp_script`, `track_file`, `vrrp_track_process`, `track_*` lists,
notify commands and `vrrp_sync_group` (man keepalived.conf "VRRP script(s)", "Track files",
"VRRP track processes", "VRRP synchronization group(s)").
"""

from __future__ import annotations

from vrrpd.config.lexer import Node
from vrrpd.config.model import (
    Command,
    NotifySpec,
    ScriptSpec,
    SyncGroupConfig,
    TrackFileSpec,
    TrackProcessSpec,
    TrackRef,
)
from vrrpd.config.values import (
    Ctx,
    Draft,
    Handler,
    bool_kw,
    deprecated_kw,
    dispatch,
    flag_kw,
    int_kw,
    seconds_kw,
    split_command,
    unsupported_kw,
)

NOTIFY_KEYWORDS = {
    "notify_master": "master",
    "notify_backup": "backup",
    "notify_fault": "fault",
    "notify_stop": "stop",
    "notify_deleted": "deleted",
    "notify": "generic",
    "notify_master_rx_lower_pri": "master_rx_lower_pri",
}


def parse_command(node: Node, ctx: Ctx, with_user: bool = True) -> Command | None:
    """`KEYWORD CMD|"CMD ARGS" [user [group]]`: a quoted command is split into argv."""
    if not ctx.nargs(node, 1, 3 if with_user else None, '"<COMMAND> [ARGS]" [USER [GROUP]]'):
        return None
    first, rest = node.args[0], node.args[1:]
    if not with_user:  # `script a b c`: every word belongs to the command
        argv = tuple(w for t in node.args for w in split_command(t.text))
        rest = ()
    else:
        argv = split_command(first.text) if first.quoted else (first.text,)
    if not argv or not argv[0]:
        ctx.error(first.loc, f"'{node.name}' has an empty command")
        return None
    user = rest[0].text.split(":", 1) if rest else []
    group = rest[1].text if len(rest) > 1 else (user[1] if len(user) > 1 else None)
    return Command(argv, user[0] if user else None, group, node.loc)


def notify_kw(field: str) -> Handler:
    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        cmd = parse_command(node, ctx)
        if cmd is not None:
            d.setdefault("notify", {})[field] = cmd

    return handle


NOTIFY_HANDLERS: dict[str, Handler] = {k: notify_kw(v) for k, v in NOTIFY_KEYWORDS.items()}


def parse_track_ref(node: Node, ctx: Ctx, lo: int = -254, hi: int = 254) -> TrackRef | None:
    """`NAME [weight W [reverse|noreverse]]` inside a `track_*` block.

    keepalived takes `no_reverse` as a synonym of `noreverse`; for scripts and interfaces
    (range -253..253) it turns +/-254 into +/-253 with a warning instead of refusing it.
    """
    words = list(node.args)
    weight, reverse = None, False
    while words:
        tok = words.pop(0)
        if tok.text == "weight" and words:
            wtok = words.pop(0)
            weight = ctx.int_(wtok, -254, 254, "weight")
            if weight is None:
                return None
            if not lo <= weight <= hi:
                ctx.warn(
                    wtok.loc,
                    f"weight for {node.name} cannot be +/-254. Setting to +/-253",
                    f"use {lo}..{hi}",
                )
                weight = max(lo, min(hi, weight))
        elif tok.text in ("reverse", "noreverse", "no_reverse"):
            reverse = tok.text == "reverse"
        else:
            ctx.error(
                tok.loc,
                f"unexpected '{tok.text}' in {node.name} entry",
                "usage: NAME [weight W [reverse]]",
            )
            return None
    return TrackRef(node.name, weight, reverse, node.loc)


def track_block(field: str, lo: int = -254, hi: int = 254) -> Handler:
    """`track_interface {}` / `track_script {}` / `track_file {}` / `track_process {}`.

    A name listed twice keeps its first entry (keepalived: `duplicate track_script X -
    ignoring`).
    """
    kind = field.removesuffix("es" if field.endswith("processes") else "s")

    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        items = d.setdefault(field, [])
        for child in ctx.block(node):
            ref = parse_track_ref(child, ctx, lo, hi)
            if ref is None:
                continue
            if any(r.name == ref.name for r in items):
                ctx.warn(child.loc, f"duplicate {kind} {ref.name} - ignoring")
                continue
            items.append(ref)

    return handle


TRACK_HANDLERS: dict[str, Handler] = {
    "track_interface": track_block("track_interfaces", -253, 253),
    "track_script": track_block("track_scripts", -253, 253),
    "track_file": track_block("track_files"),
    "track_process": track_block("track_processes"),
    "track_bfd": unsupported_kw("(BFD) not supported by vrrpd"),
}


def weight_kw(lo: int, hi: int) -> Handler:
    """`weight W [reverse|noreverse]` in a tracker definition."""

    def handle(d: Draft, node: Node, ctx: Ctx) -> None:
        if ctx.nargs(node, 1, 2, f"<{lo}..{hi}> [reverse]"):
            weight = ctx.int_(node.args[0], lo, hi, "weight")
            if weight is not None:
                d["weight"] = weight
            word = node.args[1].text if len(node.args) > 1 else "noreverse"
            if word not in ("reverse", "noreverse", "no_reverse"):
                ctx.warn(node.args[1].loc, f"unknown word '{word}' after weight (ignored)",
                         "use: weight W [reverse]")  # fmt: skip
            d["reverse"] = word == "reverse"

    return handle


def _script(d: Draft, node: Node, ctx: Ctx) -> None:
    cmd = parse_command(node, ctx, with_user=False)
    if cmd is not None:
        d["argv"] = cmd.argv


def _user(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 2, "USER [GROUP]"):
        user, _, group = node.args[0].text.partition(":")
        d["user"] = user
        d["group"] = node.args[1].text if len(node.args) > 1 else (group or None)


SCRIPT_HANDLERS: dict[str, Handler] = {
    "script": _script,
    "interval": seconds_kw("interval_s", 0.000001, 86400 * 365),
    "timeout": seconds_kw("timeout_s", 0, 86400 * 365),
    "weight": weight_kw(-253, 253),
    "rise": int_kw("rise", 1, 1_000_000),
    "fall": int_kw("fall", 1, 1_000_000),
    "user": _user,
    "init_fail": flag_kw("init_fail", True),
}


def parse_script(node: Node, ctx: Ctx) -> ScriptSpec | None:
    """keepalived `vrrp_script NAME {}`: interval 1 s, timeout = interval, weight 0, rise/fall 1."""
    if not ctx.nargs(node, 1, 1, "NAME { ... }"):
        return None
    name = node.args[0].text
    d: Draft = {}
    dispatch(f"vrrp_script:{name}", ctx.block(node), SCRIPT_HANDLERS, d, ctx)
    if "argv" not in d:
        ctx.error(node.loc, f"vrrp_script {name} has no 'script'", 'add: script "/path/to/check"')
        return None
    if not d.get("timeout_s"):
        d["timeout_s"] = d.get("interval_s", 1.0)
    return ScriptSpec(name=name, location=node.loc, **d)


def _file(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "PATH"):
        d["path"] = node.args[0].text


def _init_file(d: Draft, node: Node, ctx: Ctx) -> None:
    words = [a.text for a in node.args]
    d["init_overwrite"] = "overwrite" in words
    values = [a for a in node.args if a.text != "overwrite"]
    value = ctx.int_(values[0], -(2**31), 2**31 - 1, "init_file") if values else 0
    if value is not None:
        d["init_file"] = value


# man5 "Track files": `weight <-2147483647..2147483647>` (a VRRP instance caps what it adds
# at 253 anyway; a real server's FILE_CHECK uses the whole range).
MAX_FILE_WEIGHT = 2**31 - 1
TRACK_FILE_HANDLERS: dict[str, Handler] = {
    "file": _file,
    "weight": weight_kw(-MAX_FILE_WEIGHT, MAX_FILE_WEIGHT),
    "init_file": _init_file,
}


def parse_track_file(node: Node, ctx: Ctx) -> TrackFileSpec | None:
    """keepalived `track_file NAME { file PATH; weight W [reverse]; init_file [V] [overwrite] }`."""
    if node.name == "vrrp_track_file":
        ctx.warn(node.loc, "'vrrp_track_file' is deprecated", "use 'track_file'")
    if not ctx.nargs(node, 1, 1, "NAME { ... }"):
        return None
    name = node.args[0].text
    d: Draft = {}
    dispatch(f"track_file:{name}", ctx.block(node), TRACK_FILE_HANDLERS, d, ctx)
    if "path" not in d:
        ctx.error(node.loc, f"track_file {name} has no 'file'", "add: file /path/to/file")
        return None
    return TrackFileSpec(name=name, location=node.loc, **d)


def _process(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, None, "NAME [ARGS...]"):
        d["process"] = node.args[0].text
        d["args"] = tuple(a.text for a in node.args[1:])


def _param_match(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "exact|partial|initial"):
        word = node.args[0].text
        if word not in ("exact", "partial", "initial"):
            ctx.error(node.args[0].loc, f"unknown param_match '{word}'", "use partial|initial")
        else:
            d["param_match"] = word


def _delay(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "<SECONDS>"):
        value = ctx.seconds(node.args[0], 0, 3600, node.name)
        if value is not None:
            d["fork_delay_s"] = d["terminate_delay_s"] = value


PROCESS_HANDLERS: dict[str, Handler] = {
    "process": _process,
    "param_match": _param_match,
    "full_command": flag_kw("full_command", True),
    "weight": weight_kw(-254, 254),
    "quorum": int_kw("quorum", 1, 65535),
    "quorum_max": int_kw("quorum_max", 0, 65535),
    "fork_delay": seconds_kw("fork_delay_s", 0, 3600),
    "terminate_delay": seconds_kw("terminate_delay_s", 0, 3600),
    "delay": _delay,
}


def parse_track_process(node: Node, ctx: Ctx) -> TrackProcessSpec | None:
    """keepalived `vrrp_track_process NAME { process NAME [ARGS]; weight W; quorum N; ... }`."""
    if not ctx.nargs(node, 1, 1, "NAME { ... }"):
        return None
    name = node.args[0].text
    d: Draft = {}
    dispatch(f"vrrp_track_process:{name}", ctx.block(node), PROCESS_HANDLERS, d, ctx)
    if "process" not in d:
        ctx.error(node.loc, f"vrrp_track_process {name} has no 'process'", "add: process NAME")
        return None
    if d.get("quorum_max") is not None and d["quorum_max"] < d.get("quorum", 1):
        if "quorum" in d:  # keepalived keeps the quorum and drops the maximum
            loc = ctx.locs[(f"vrrp_track_process:{name}", "quorum_max")]
            ctx.warn(loc, "quorum_max is less than quorum - ignoring")
            del d["quorum_max"]
        else:  # `quorum_max 0` alone: success means no matching process runs
            d["quorum"] = d["quorum_max"]
    return TrackProcessSpec(name=name, location=node.loc, **d)


def _group(d: Draft, node: Node, ctx: Ctx) -> None:
    members = d.setdefault("members", [])
    for child in ctx.block(node):
        members.extend(child.words())


SYNC_HANDLERS: dict[str, Handler] = {
    "group": _group,
    **TRACK_HANDLERS,
    **{k: v for k, v in NOTIFY_HANDLERS.items() if k not in ("notify_deleted",)},
    "notify_priority_changes": bool_kw("notify_priority_changes"),
    "smtp_alert": bool_kw("smtp_alert"),
    "sync_group_tracking_weight": flag_kw("sync_group_tracking_weight", True),
    "global_tracking": deprecated_kw(
        flag_kw("sync_group_tracking_weight", True), "sync_group_tracking_weight"
    ),
}


def parse_sync_group(node: Node, ctx: Ctx) -> SyncGroupConfig | None:
    """keepalived `vrrp_sync_group NAME { group { I1 I2 ... } ... }`."""
    if not ctx.nargs(node, 1, 1, "NAME { group { ... } }"):
        return None
    name = node.args[0].text
    d: Draft = {}
    dispatch(f"vrrp_sync_group:{name}", ctx.block(node), SYNC_HANDLERS, d, ctx)
    members = d.pop("members", [])
    if not members:
        # keepalived removes a group without members and runs on
        ctx.warn(
            node.loc,
            f"vrrp_sync_group {name} has no members; removing it",
            "members go inside a block: group { VI_1 VI_2 }",
        )
        return None
    if len(members) == 1:
        ctx.warn(node.loc, f"vrrp_sync_group {name} has only one member")
    notify = NotifySpec(**d.pop("notify", {}))
    ifaces = [
        TrackRef(t.name, t.weight or 0, t.reverse, t.location)
        for t in d.pop("track_interfaces", ())
    ]
    lists: Draft = {
        k: tuple(d.pop(k, ())) for k in ("track_scripts", "track_files", "track_processes")
    }
    lists["track_interfaces"] = tuple(ifaces)
    return SyncGroupConfig(
        name=name, members=tuple(members), notify=notify, location=node.loc, **lists, **d
    )
