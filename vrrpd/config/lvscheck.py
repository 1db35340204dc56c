"""keepalived health-checker blocks inside `real_server {}` (man keepalived.conf "CHECKER_TYPE"):
TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, DNS_CHECK, SMTP_CHECK, PING_CHECK, UDP_CHECK and
FILE_CHECK, with the common connection and timing keywords, into `CheckerSpec`s. The `url {}`
block is `lvsurl`, UDP_CHECK's keywords `lvsudp`.

Inheritance follows man5 "the virtual server setting is the default for real servers, and the
real server setting is the default for checkers": `finish_checker` gets the real server's and
virtual server's values (`Inherit`) and fills in each checker type's own defaults. The global
`SSL {}` block and the `track_file` blocks come along in `Inherit.shared`: every SSL_GET gets the
SSL settings, every FILE_CHECK the track_file it names.
BFD_CHECK is accepted with a warning and not run: it needs keepalived's separate BFD process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vrrpd.config.diag import did_you_mean
from vrrpd.config.lexer import Node
from vrrpd.config.lvsmodel import (
    DNS_TYPES,
    HTTP_PROTOCOLS,
    CheckerKind,
    CheckerSpec,
    CheckParams,
    DnsParams,
    FileCheckParams,
    HttpParams,
    MiscParams,
    SmtpParams,
    SslSpec,
)
from vrrpd.config.lvsudp import UDP_HANDLERS, udp_params
from vrrpd.config.lvsurl import url_kw, url_spec
from vrrpd.config.model import Command, IPAddress, TrackFileSpec
from vrrpd.config.trackers import MAX_FILE_WEIGHT, SCRIPT_HANDLERS, weight_kw
from vrrpd.config.values import (
    Ctx,
    Draft,
    Handler,
    bool_kw,
    deprecated_kw,
    dispatch,
    flag_kw,
    int_kw,
    ip_kw,
    seconds_kw,
    split_command,
    str_kw,
)
from vrrpd.errors import Location

MAX_TIMER_S = 86400.0 * 365
UNSUPPORTED_CHECKERS = ("BFD_CHECK",)
# Keywords valid in a virtual_server, a real_server and a checker: the inherited timings.
TIMING_HANDLERS: dict[str, Handler] = {
    "connect_timeout": seconds_kw("connect_timeout_s", 0.000001, MAX_TIMER_S),
    "retry": int_kw("retry", 0, 2**31 - 1),
    "nb_get_retry": deprecated_kw(int_kw("retry", 0, 2**31 - 1), "retry"),
    "delay_before_retry": seconds_kw("delay_before_retry_s", 0, MAX_TIMER_S),
    "warmup": seconds_kw("warmup_s", 0, MAX_TIMER_S),
    "delay_loop": seconds_kw("delay_loop_s", 0.000001, MAX_TIMER_S),
    "alpha": bool_kw("alpha"),
}
INHERITED = ("connect_timeout_s", "retry", "delay_before_retry_s", "warmup_s", "delay_loop_s",
             "alpha", "virtualhost")  # fmt: skip


@dataclass(frozen=True, slots=True)
class LvsShared:
    """Top-level blocks checkers refer to: `SSL {}` and the `track_file`s by name."""

    ssl: SslSpec | None = None
    track_files: Mapping[str, TrackFileSpec] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Inherit:
    """What a checker inherits: the real server's values over the virtual server's."""

    values: dict[str, Any]
    rs_address: IPAddress
    rs_port: int
    vs_delay_loop_s: float
    shared: LvsShared = LvsShared()


def _port_kw(name: str) -> Handler:
    return int_kw(name, 1, 65535)


CONNECTION_HANDLERS: dict[str, Handler] = {
    "connect_ip": ip_kw("connect_ip"),
    "connect_port": _port_kw("connect_port"),
    "bindto": ip_kw("bindto"),
    "bind_to": ip_kw("bindto"),
    "bind_port": _port_kw("bind_port"),
    "bind_if": str_kw("bind_if"),
    "fwmark": int_kw("fwmark", 0, 2**32 - 1),
}
COMMON_HANDLERS: dict[str, Handler] = {
    **CONNECTION_HANDLERS,
    **TIMING_HANDLERS,
    "log_all_failures": bool_kw("log_all_failures"),
}


def _http_protocol(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "1.0|1.0C|1.1"):
        word = node.args[0].text.upper()
        if word not in HTTP_PROTOCOLS:
            ctx.error(node.args[0].loc, f"unknown http_protocol '{node.args[0].text}'",
                      "use 1.0, 1.0C or 1.1")  # fmt: skip
        else:
            d["http_protocol"] = word


HTTP_HANDLERS: dict[str, Handler] = {
    **COMMON_HANDLERS,
    "url": url_kw,
    "http_protocol": _http_protocol,
    "virtualhost": str_kw("virtualhost"),
    "fast_recovery": bool_kw("fast_recovery"),
}
SSL_HANDLERS: dict[str, Handler] = {
    **HTTP_HANDLERS,
    "enable_sni": bool_kw("enable_sni"),
    "sni_name": str_kw("sni_name"),
}


def _misc_path(d: Draft, node: Node, ctx: Ctx) -> None:
    """`misc_path PATH|"PATH ARGS"`: a quoted command is split like keepalived does."""
    if ctx.nargs(node, 1, 1, '<PATH>|"<PATH> ARGS"'):
        tok = node.args[0]
        argv = split_command(tok.text) if tok.quoted else (tok.text,)
        if not argv or not argv[0]:
            ctx.error(tok.loc, "misc_path has an empty command")
        else:
            d["argv"] = argv


MISC_HANDLERS: dict[str, Handler] = {
    **TIMING_HANDLERS,
    "log_all_failures": bool_kw("log_all_failures"),
    "misc_path": _misc_path,
    "misc_timeout": seconds_kw("misc_timeout_s", 0.000001, MAX_TIMER_S),
    "misc_dynamic": bool_kw("dynamic"),
    "user": SCRIPT_HANDLERS["user"],  # `user USER [GROUP]`, as in vrrp_script
}
del MISC_HANDLERS["connect_timeout"]  # MISC_CHECK has only the options from alpha onwards


def _dns_type(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "|".join(DNS_TYPES)):
        word = node.args[0].text.upper()
        if word not in DNS_TYPES:
            ctx.error(node.args[0].loc, f"unknown DNS_CHECK type '{node.args[0].text}'",
                      f"use one of {', '.join(DNS_TYPES)}")  # fmt: skip
        else:
            d["type"] = word


def _dns_name(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "<NAME>"):
        name = node.args[0].text
        labels = name.rstrip(".").split(".") if name != "." else []
        if any(not label or len(label) > 63 for label in labels) or len(name) > 253:
            ctx.error(node.args[0].loc, f"DNS_CHECK name '{name}' is not a valid domain name",
                      "labels are 1..63 characters, no empty label")  # fmt: skip
        else:
            d["name"] = name


DNS_HANDLERS: dict[str, Handler] = {**COMMON_HANDLERS, "type": _dns_type, "name": _dns_name}


def _smtp_host(d: Draft, node: Node, ctx: Ctx) -> None:
    """`host { connect_ip ... }`: deprecated; keepalived makes each host its own checker."""
    ctx.warn(node.loc, "the SMTP_CHECK host block is deprecated; it becomes its own SMTP_CHECK",
             "define one SMTP_CHECK per address")  # fmt: skip
    host: Draft = {}
    dispatch("host", ctx.block(node), {**CONNECTION_HANDLERS, **TIMING_HANDLERS}, host, ctx)
    d.setdefault("hosts", []).append(host)


SMTP_HANDLERS: dict[str, Handler] = {
    **COMMON_HANDLERS,
    "helo_name": str_kw("helo_name"),
    "host": _smtp_host,
}


def _track_file(d: Draft, node: Node, ctx: Ctx) -> None:
    if ctx.nargs(node, 1, 1, "<NAME>"):
        d["track_file"] = node.args[0]


# man5: "BFD_CHECK and FILE_CHECK ... have none of the standard options".
FILE_HANDLERS: dict[str, Handler] = {
    "track_file": _track_file,
    "weight": weight_kw(-MAX_FILE_WEIGHT, MAX_FILE_WEIGHT),
    "dynamic": flag_kw("dynamic", True),
}
CHECKER_HANDLERS: dict[CheckerKind, dict[str, Handler]] = {
    CheckerKind.TCP_CHECK: COMMON_HANDLERS,
    CheckerKind.HTTP_GET: HTTP_HANDLERS,
    CheckerKind.SSL_GET: SSL_HANDLERS,
    CheckerKind.MISC_CHECK: MISC_HANDLERS,
    CheckerKind.DNS_CHECK: DNS_HANDLERS,
    CheckerKind.SMTP_CHECK: SMTP_HANDLERS,
    CheckerKind.PING_CHECK: COMMON_HANDLERS,
    CheckerKind.UDP_CHECK: {**COMMON_HANDLERS, **UDP_HANDLERS},
    CheckerKind.FILE_CHECK: FILE_HANDLERS,
}
CHECKER_NAMES = frozenset(k.value for k in CheckerKind) | frozenset(UNSUPPORTED_CHECKERS)


def parse_checker(node: Node, inherit: Inherit, ctx: Ctx) -> list[CheckerSpec]:
    """One checker block into its `CheckerSpec`s (SMTP `host` blocks add one each)."""
    if node.name in UNSUPPORTED_CHECKERS:
        ctx.warn(node.loc, f"{node.name} is not supported by vrrpd: it needs keepalived's "
                 "separate BFD process; the real server is not checked by it (ignored)",
                 "check the server with another checker (PING_CHECK, TCP_CHECK, ...)")  # fmt: skip
        return []
    kind = CheckerKind(node.name)
    ctx.nargs(node, 0, 0, "{ ... }")
    d: Draft = {}
    dispatch(node.name, ctx.block(node), CHECKER_HANDLERS[kind], d, ctx)
    hosts = d.pop("hosts", [])
    first = _finish(kind, d, inherit, node.loc, ctx)
    extra = [_finish(kind, {**d, **h}, inherit, node.loc, ctx) for h in hosts]
    return [c for c in (first, *extra) if c is not None]


def _timing(kind: CheckerKind, d: Draft, inherit: Inherit) -> dict[str, Any]:
    """keepalived's defaults: delay_loop 60 s, connect_timeout 5 s, retry 1 (DNS 3, MISC 0),
    delay_before_retry 1 s (HTTP/SSL 3 s, DNS delay_loop), warmup = delay_loop."""
    got = {k: d[k] if k in d else inherit.values.get(k) for k in INHERITED}
    delay_loop = got["delay_loop_s"] if got["delay_loop_s"] is not None else 60.0
    default_retry = {CheckerKind.DNS_CHECK: 3, CheckerKind.MISC_CHECK: 0}.get(kind, 1)
    default_dbr = {CheckerKind.HTTP_GET: 3.0, CheckerKind.SSL_GET: 3.0,
                   CheckerKind.DNS_CHECK: delay_loop}.get(kind, 1.0)  # fmt: skip
    return {
        "delay_loop_s": delay_loop,
        "connect_timeout_s": _or(got["connect_timeout_s"], 5.0),
        "retry": _or(got["retry"], default_retry),
        "delay_before_retry_s": _or(got["delay_before_retry_s"], default_dbr),
        "warmup_s": _or(got["warmup_s"], delay_loop),
        "alpha": bool(got["alpha"]),
        "log_all_failures": bool(d.get("log_all_failures", False)),
    }


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _finish(
    kind: CheckerKind, d: Draft, inherit: Inherit, loc: Location, ctx: Ctx
) -> CheckerSpec | None:
    if kind is CheckerKind.FILE_CHECK:
        file_params = _file_params(d, inherit, loc, ctx)
        return None if file_params is None else CheckerSpec(kind, params=file_params, location=loc)
    timing = _timing(kind, d, inherit)
    if kind is CheckerKind.MISC_CHECK:
        misc = _misc_params(d, inherit, loc, ctx)
        if misc is None:
            return None
        timing["connect_timeout_s"] = 5.0  # MISC_CHECK makes no connection
        return CheckerSpec(kind=kind, params=misc, location=loc, **timing)
    conn = _connection(kind, d, inherit, loc, ctx)
    if conn is None:
        return None
    params = _params(kind, d, inherit, loc, ctx)
    return CheckerSpec(kind=kind, params=params, location=loc, **conn, **timing)


def _connection(
    kind: CheckerKind, d: Draft, inherit: Inherit, loc: Location, ctx: Ctx
) -> dict[str, Any] | None:
    """connect_ip/connect_port default to the real server; families must agree."""
    ip = d.get("connect_ip", inherit.rs_address)
    port: int | None = d.get("connect_port", inherit.rs_port) or None
    if kind is CheckerKind.SMTP_CHECK and port is None:
        port = 25  # keepalived's SMTP default port when neither side gives one
    if kind is CheckerKind.PING_CHECK:
        port = None
    elif port is None:
        ctx.error(loc, f"{kind.value} for real server {inherit.rs_address} has no port",
                  "add connect_port (the real server has none)")  # fmt: skip
        return None
    bindto = d.get("bindto")
    if bindto is not None and bindto.version != ip.version:
        ctx.error(loc, f"{kind.value} bindto {bindto} and connect_ip {ip} are different "
                  "address families")  # fmt: skip
        return None
    keys = ("bind_port", "bind_if", "fwmark")
    return {"connect_ip": ip, "connect_port": port, "bindto": bindto,
            **{k: d.get(k) for k in keys}}  # fmt: skip


def _misc_params(d: Draft, inherit: Inherit, loc: Location, ctx: Ctx) -> MiscParams | None:
    if "argv" not in d:
        ctx.error(loc, "MISC_CHECK has no misc_path", 'add: misc_path "/path/to/check args"')
        return None
    command = Command(d["argv"], d.get("user"), d.get("group"), loc)
    # keepalived: no misc_timeout means the virtual server's delay_loop
    timeout = d.get("misc_timeout_s", inherit.vs_delay_loop_s)
    return MiscParams(command=command, timeout_s=timeout, dynamic=bool(d.get("dynamic")))


def _file_params(d: Draft, inherit: Inherit, loc: Location, ctx: Ctx) -> FileCheckParams | None:
    """FILE_CHECK: the named track_file must exist; weight and reverse default to its own."""
    tok = d.get("track_file")
    if tok is None:
        ctx.error(loc, "FILE_CHECK has no track_file", "add: track_file NAME")
        return None
    files = inherit.shared.track_files
    spec = files.get(tok.text)
    if spec is None:
        hint = did_you_mean(tok.text, files) or f"define it with track_file {tok.text} {{ }}"
        ctx.error(tok.loc, f"track_file '{tok.text}' is not defined", hint)
        return None
    return FileCheckParams(
        file=spec,
        weight=d.get("weight", spec.weight),
        reverse=d.get("reverse", spec.reverse) if "weight" in d else spec.reverse,
        dynamic=bool(d.get("dynamic")),
    )


def _params(kind: CheckerKind, d: Draft, inherit: Inherit, loc: Location, ctx: Ctx) -> CheckParams:
    if kind in (CheckerKind.HTTP_GET, CheckerKind.SSL_GET):
        vhost = d.get("virtualhost", inherit.values.get("virtualhost"))
        urls = tuple(url_spec(u, vhost) for u in d.get("urls", ()))
        if not urls:
            ctx.warn(loc, f"{kind.value} has no url; the real server is considered up "
                     "without a check, as keepalived does", "add: url { path / }")  # fmt: skip
        return HttpParams(
            urls=urls,
            http_protocol=d.get("http_protocol", "1.0"),
            enable_sni=bool(d.get("enable_sni")),
            sni_name=d.get("sni_name"),
            fast_recovery=bool(d.get("fast_recovery")),
            ssl=inherit.shared.ssl if kind is CheckerKind.SSL_GET else None,
        )
    if kind is CheckerKind.UDP_CHECK:
        return udp_params(d, loc, ctx)
    if kind is CheckerKind.DNS_CHECK:
        return DnsParams(type=d.get("type", "SOA"), name=d.get("name", "."))
    if kind is CheckerKind.SMTP_CHECK:
        return SmtpParams(helo_name=d["helo_name"]) if "helo_name" in d else SmtpParams()
    return None


__all__ = ["CHECKER_NAMES", "TIMING_HANDLERS", "Inherit", "LvsShared", "parse_checker"]
