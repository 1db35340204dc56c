"""The LVS part of the YAML emitter (`vrrpd --convert-to-yaml`): `virtual_server_groups`,
`virtual_servers` and `ssl` in the schema `yamlconf` reads, every value explicit, so a round trip
gives an equal model. Checker timings are written on each checker (where the model keeps them);
the `SSL` block is written once, from the SSL_GET checkers that carry it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vrrpd.config.lvsmodel import (
    CheckerKind,
    CheckerSpec,
    DnsParams,
    FileCheckParams,
    Forwarding,
    HttpParams,
    MiscParams,
    RealServerSpec,
    SmtpParams,
    SslSpec,
    UdpParams,
    UrlSpec,
    VirtualServerSpec,
    VsgEntry,
)
from vrrpd.config.lvsssl import ssl_specs
from vrrpd.config.model import Command, Config

CommandEmitter = Callable[[Command | None], Any]


def _forwarding(f: Forwarding) -> str:
    words = [f.method.value]
    if f.tunnel_type:
        words += ["type", f.tunnel_type]
    if f.tunnel_port is not None:
        words += ["port", str(f.tunnel_port)]
    if f.tunnel_csum:
        words.append(f.tunnel_csum)
    return " ".join(words)


def _vsg_entry(e: VsgEntry) -> str:
    if e.fwmark is not None:
        return f"fwmark {e.fwmark} {'inet6' if e.family == 6 else 'inet'}"
    span = str(e.first) if e.first == e.last else f"{e.first}-{e.last}"
    return f"{span} {e.port}"


def _url(u: UrlSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": u.path,
        "digest": u.digest,
        "status_code": " ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in u.status_codes),
        "virtualhost": u.virtualhost,
    }
    if (r := u.regex) is not None:
        out.update(regex=r.pattern, regex_no_match=r.no_match, regex_options=list(r.options))
        out.update(regex_min_offset=r.min_offset, regex_max_offset=r.max_offset)
        out["regex_stack"] = f"{r.stack[0]} {r.stack[1]}" if r.stack else None
    return {k: v for k, v in out.items() if v is not None}


def _udp(p: UdpParams) -> dict[str, Any]:
    out: dict[str, Any] = {"payload": p.payload, "require_reply": p.require_reply}
    out["reply"] = p.reply
    out.update(min_reply_length=p.min_reply_length, max_reply_length=p.max_reply_length)
    return out


def _ssl(spec: SslSpec) -> dict[str, Any]:
    out = {"password": spec.password, "ca": spec.ca, "certificate": spec.certificate}
    out["key"] = spec.key
    return {k: v for k, v in out.items() if v is not None}


def _params(c: CheckerSpec) -> dict[str, Any]:
    p = c.params
    if isinstance(p, HttpParams):
        out: dict[str, Any] = {"url": [_url(u) for u in p.urls], "http_protocol": p.http_protocol}
        out["fast_recovery"] = p.fast_recovery
        if c.kind is CheckerKind.SSL_GET:
            out.update(enable_sni=p.enable_sni, sni_name=p.sni_name)
        return out
    if isinstance(p, MiscParams):
        cmd = p.command
        return {"misc_path": list(cmd.argv), "misc_timeout_s": p.timeout_s,
                "misc_dynamic": p.dynamic, "user": cmd.user, "group": cmd.group}  # fmt: skip
    if isinstance(p, DnsParams):
        return {"type": p.type, "name": p.name}
    if isinstance(p, SmtpParams):
        return {"helo_name": p.helo_name}
    if isinstance(p, UdpParams):
        return _udp(p)
    if isinstance(p, FileCheckParams):
        return {"track_file": p.file.name, "weight": p.weight, "reverse": p.reverse,
                "dynamic": p.dynamic}  # fmt: skip
    return {}


def _checker(c: CheckerSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"type": c.kind.value}
    if c.kind is CheckerKind.FILE_CHECK:  # none of the connection and timing options
        return {**out, **_params(c)}
    for key in ("connect_ip", "bindto"):
        value = getattr(c, key)
        out[key] = None if value is None else str(value)
    out.update(connect_port=c.connect_port, bind_port=c.bind_port, bind_if=c.bind_if)
    out.update(fwmark=c.fwmark, delay_loop_s=c.delay_loop_s, retry=c.retry)
    out.update(delay_before_retry_s=c.delay_before_retry_s, warmup_s=c.warmup_s)
    if c.params is None or not isinstance(c.params, MiscParams):
        out["connect_timeout_s"] = c.connect_timeout_s
    out.update(alpha=c.alpha, log_all_failures=c.log_all_failures, **_params(c))
    return {k: v for k, v in out.items() if v is not None}


def _real_server(rs: RealServerSpec, command: CommandEmitter) -> dict[str, Any]:
    out: dict[str, Any] = {
        "address": str(rs.address),
        "port": rs.port,
        "weight": rs.weight,
        "lvs_method": _forwarding(rs.forwarding),
        "inhibit_on_failure": rs.inhibit_on_failure,
        "notify_up": command(rs.notify_up),
        "notify_down": command(rs.notify_down),
        "uthreshold": rs.uthreshold,
        "lthreshold": rs.lthreshold,
        "checkers": [_checker(c) for c in rs.checkers],
    }
    return {k: v for k, v in out.items() if v is not None}


def _virtual_server(vs: VirtualServerSpec, command: CommandEmitter) -> dict[str, Any]:
    out: dict[str, Any]
    if vs.group is not None:
        out = {"group": vs.group}
    elif vs.fwmark is not None:
        out = {"fwmark": vs.fwmark}
    else:
        out = {"address": str(vs.address), "port": vs.port}
    if vs.fwmark is None:
        out["protocol"] = vs.protocol.value
    if vs.address is None:
        out["ip_family"] = "inet6" if vs.family == 6 else "inet"
    sorry = vs.sorry_server
    out.update({
        "lvs_sched": vs.scheduler,
        "sched_flags": list(vs.sched_flags),
        "ops": vs.ops,
        "lvs_method": _forwarding(vs.forwarding),
        "persistence_timeout": vs.persistence_timeout_s,
        "persistence_granularity": vs.persistence_granularity,
        "persistence_engine": vs.persistence_engine,
        "quorum": vs.quorum,
        "hysteresis": vs.hysteresis,
        "quorum_up": command(vs.quorum_up),
        "quorum_down": command(vs.quorum_down),
        "sorry_server": f"{sorry.address} {sorry.port}" if sorry else None,
        "sorry_server_lvs_method": _forwarding(sorry.forwarding) if sorry else None,
        "sorry_server_inhibit": sorry.inhibit if sorry else None,
        "alpha": vs.alpha,
        "omega": vs.omega,
        "ha_suspend": vs.ha_suspend,
        "real_servers": [_real_server(rs, command) for rs in vs.real_servers],
    })  # fmt: skip
    return {k: v for k, v in out.items() if v is not None}


def lvs_to_yaml(config: Config, command: CommandEmitter) -> dict[str, Any]:
    """`virtual_server_groups`, `virtual_servers` and `ssl`; `command` writes a notify
    command."""
    ssl = ssl_specs(config.virtual_servers)
    return {
        "ssl": _ssl(ssl[0]) if ssl else None,
        "virtual_server_groups": {
            g.name: [_vsg_entry(e) for e in g.entries] for g in config.virtual_server_groups
        },
        "virtual_servers": [_virtual_server(vs, command) for vs in config.virtual_servers],
    }
