"""The control protocol: one JSON request per line in, one JSON response per line out.

Pure functions shared by the daemon's control socket (`vrrpd.runtime.control`) and the
`vrrpctl` client (`vrrpd.ctl`); the wire format is documented in docs/control.md. Nothing here
does IO, so the parsing and formatting are tested without a socket.

keepalived has no control channel (manual failover means editing priorities and SIGHUP, see
../../shared/reference/keepalived.md gap 15); the commands are vrrpd's own.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from vrrpd.config.model import InstanceConfig
from vrrpd.core.engine import InstanceStatus
from vrrpd.errors import VrrpdError

PROTO_VERSION = 1
MAX_LINE = 64 * 1024  # one request line, newline included
MAX_HOLD_S = 7 * 86400.0  # `resign --for` longer than a week is surely a typo
DEFAULT_PID_FILE = "/run/vrrpd.pid"  # the daemon's own default (`vrrpd -p`)
COMMANDS = ("status", "reload", "priority", "resign", "takeover")


class ControlError(VrrpdError):
    """A request the daemon refuses; `code` is the machine-readable part of the answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request. `priority` None with cmd "priority" means "clear the override"."""

    cmd: str
    instance: str | None = None
    priority: int | None = None
    hold_s: float | None = None
    id: str | int | None = None

    def describe(self) -> str:
        """How the request reads in the daemon's log line."""
        match self.cmd:
            case "priority":
                what = "clear" if self.priority is None else str(self.priority)
                return f"priority {self.instance} {what}"
            case "resign" if self.hold_s is not None:
                return f"resign {self.instance} for {self.hold_s:g} s"
            case "resign" | "takeover":
                return f"{self.cmd} {self.instance}"
        return self.cmd


def socket_path(configured: str | None, pid_file: str | None) -> str:
    """The control socket: `--control-socket PATH`, else beside the `-p` pid file
    (`/run/vrrpd.pid` -> `/run/vrrpd.ctl`), so daemons side by side never share one."""
    if configured:
        return configured
    stem, _ = os.path.splitext(pid_file or DEFAULT_PID_FILE)
    return f"{stem}.ctl"


# -- requests ----------------------------------------------------------------------------------


def encode_request(cmd: str, **args: Any) -> bytes:
    """The client side: one request line (arguments that are None are left out)."""
    body = {"cmd": cmd, **{k: v for k, v in args.items() if v is not None}}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def parse_request(line: bytes) -> Request:
    """Decode and check one request line; raises ControlError with a message for a person."""
    try:
        body = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ControlError("bad_json", f"request is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ControlError("bad_request", "request must be a JSON object")
    rid = body.get("id")
    if rid is not None and (not isinstance(rid, str | int) or isinstance(rid, bool)):
        raise ControlError("bad_request", '"id" must be a string or an integer')
    cmd = body.get("cmd")
    if not isinstance(cmd, str):
        raise ControlError("bad_request", 'request needs "cmd" (a string)')
    if cmd not in COMMANDS:
        raise ControlError("unknown_command", f"unknown command {cmd[:40]!r}; use {_one_of()}")
    allowed = {"cmd", "id", *_ARGS[cmd]}
    extra = sorted(set(body) - allowed)
    if extra:
        raise ControlError("bad_request", f"{cmd} takes no {', '.join(map(repr, extra))}")
    instance = _instance(body) if "instance" in _ARGS[cmd] else None
    priority = _priority(body) if cmd == "priority" else None
    hold_s = _hold(body.get("hold_s")) if cmd == "resign" else None
    return Request(cmd, instance, priority, hold_s, rid)


_ARGS: dict[str, tuple[str, ...]] = {
    "status": (),
    "reload": (),
    "priority": ("instance", "priority"),
    "resign": ("instance", "hold_s"),
    "takeover": ("instance",),
}


def _one_of() -> str:
    return ", ".join(COMMANDS)


def _instance(body: Mapping[str, Any]) -> str:
    name = body.get("instance")
    if not isinstance(name, str) or not name:
        raise ControlError("bad_request", f'{body["cmd"]} needs "instance" (a name)')
    return name


def _priority(body: Mapping[str, Any]) -> int | None:
    """1..254 (255 is the address owner's, 0 means "resigning"); null clears the override."""
    if "priority" not in body:
        raise ControlError("bad_request", 'priority needs "priority" (1..254, or null to clear)')
    value = body["priority"]
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 254:
        raise ControlError("bad_request", f"priority must be 1..254 or null, not {value!r}")
    return value


def _hold(value: object) -> float | None:
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    seconds = float(value) if number else math.nan  # type: ignore[arg-type]
    if not 0 < seconds <= MAX_HOLD_S:  # NaN and inf fail this too
        raise ControlError("bad_request", f"hold_s must be 0 < s <= {MAX_HOLD_S:g}, not {value!r}")
    return seconds


# -- responses ---------------------------------------------------------------------------------


def ok_response(result: Any, rid: str | int | None = None) -> bytes:
    return _line({"v": PROTO_VERSION, "id": rid, "ok": True, "result": result})


def error_response(code: str, message: str, rid: str | int | None = None) -> bytes:
    err = {"code": code, "message": message}
    return _line({"v": PROTO_VERSION, "id": rid, "ok": False, "error": err})


def _line(body: dict[str, Any]) -> bytes:
    if body["id"] is None:
        del body["id"]
    return json.dumps(body, separators=(",", ":"), default=jsonable).encode() + b"\n"


def parse_response(line: bytes) -> dict[str, Any]:
    """The client side: a response object with "ok" and "result" or "error"."""
    try:
        body = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise ControlError("bad_response", "the daemon's answer is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
        raise ControlError("bad_response", "the daemon's answer has no 'ok'")
    err = body.get("error")
    if not body["ok"] and not (isinstance(err, dict) and isinstance(err.get("message"), str)):
        raise ControlError("bad_response", "the daemon's error answer has no message")
    return body


# -- status ------------------------------------------------------------------------------------

_KNOWN = frozenset(
    {"name", "state", "base_priority", "effective_priority", "master_addr", "src", "interface"}
    | {"vrid", "family", "version", "advert_int_cs", "master_adver_int_cs", "vips", "faults"}
    | {"last_transition_at", "last_reason", "stats"}
    | {"manual", "manual_until", "base_override", "sync_group"}
)


def status_json(
    statuses: Iterable[InstanceStatus],
    configs: Mapping[str, InstanceConfig],
    now: float,
    wall: float,
    trackers: Callable[[InstanceConfig], Any] | None = None,
) -> list[dict[str, Any]]:
    """Every instance as a JSON object (docs/control.md "status"). `now` is the engine's
    monotonic time the snapshot was taken at and `wall` the epoch time then: monotonic `*_at`
    times are given as epoch seconds and as "seconds ago/from now"."""
    out = []
    for s in statuses:
        cfg = configs.get(s.name)
        refs = track_refs(cfg) if cfg is not None else []
        item: dict[str, Any] = {
            "name": s.name,
            "state": s.state.value,
            "base_priority": s.base_priority,
            "effective_priority": s.effective_priority,
            "master_address": _str_or_none(s.master_addr),
            "source_address": _str_or_none(s.src),
            "interface": s.interface,
            "vrid": s.vrid,
            "family": s.family,
            "version": s.version,
            "advert_int_s": s.advert_int_cs / 100.0,
            "master_advert_int_s": s.master_adver_int_cs / 100.0,
            "vips": list(s.vips),
            "faults": list(s.faults),
            "trackers": trackers(cfg) if (trackers and cfg) else refs,
            "counters": dict(s.stats),
            "last_transition": _transition(s, now, wall),
            **_manual(s, now, wall),
        }
        for f in dataclasses.fields(s):  # what the engine grows later shows up here too
            if f.name not in _KNOWN:
                item.update(_extra(f.name, getattr(s, f.name), now, wall))
        out.append(item)
    return out


def track_refs(cfg: InstanceConfig) -> list[dict[str, Any]]:
    """The configured `track_*` entries of one instance (what to show without live data)."""
    kinds = (
        ("interface", cfg.track_interfaces),
        ("script", cfg.track_scripts),
        ("file", cfg.track_files),
        ("process", cfg.track_processes),
    )
    return [
        {"kind": kind, "name": r.name, "weight": r.weight, "reverse": r.reverse}
        for kind, refs in kinds
        for r in refs
    ]


def trackers_from_snapshot(snapshot: Any, cfg: InstanceConfig) -> Any:
    """The part of the "trackers" service's `snapshot()` about `cfg`: the trackers that list
    this instance under "instances" (merged with this instance's weight, delta and fault) or
    that its `track_*` refs name; a snapshot keyed by instance name gives that entry."""
    names = {r["name"] for r in track_refs(cfg)}
    if isinstance(snapshot, Mapping):
        if cfg.name in snapshot and cfg.name not in names:
            return jsonable_tree(snapshot[cfg.name])
        out = {}
        for key, entry in snapshot.items():
            mine = _watch(entry, cfg.name)
            if mine is not None:
                out[str(key)] = jsonable_tree(mine)
            elif key in names:
                out[str(key)] = jsonable_tree(entry)
        return out
    if isinstance(snapshot, list | tuple):
        return [jsonable_tree(t) for t in snapshot if _tracker_name(t) in names]
    return jsonable_tree(snapshot)


def _watch(entry: Any, instance: str) -> dict[str, Any] | None:
    """{tracker fields..., this instance's watch fields...} if the tracker watches `instance`."""
    if not isinstance(entry, Mapping):
        return None
    watches = entry.get("instances")
    if not isinstance(watches, Mapping) or instance not in watches:
        return None
    mine = watches[instance]
    rest = {k: v for k, v in entry.items() if k != "instances"}
    return {**rest, **mine} if isinstance(mine, Mapping) else rest


def _tracker_name(item: Any) -> object:
    return item.get("name") if isinstance(item, Mapping) else getattr(item, "name", None)


def _transition(s: InstanceStatus, now: float, wall: float) -> dict[str, Any] | None:
    if s.last_transition_at is None:
        return None
    ago = max(0.0, now - s.last_transition_at)
    return {"at": round(wall - ago, 3), "ago_s": round(ago, 3), "reason": s.last_reason}


def _manual(s: InstanceStatus, now: float, wall: float) -> dict[str, Any]:
    """Manual failover in force (vrrpctl resign/takeover/priority), None when there is none."""
    until = getattr(s, "manual_until", None)
    return {
        "manual": getattr(s, "manual", None),
        "manual_until": None if until is None else round(wall + (until - now), 3),
        "manual_remaining_s": None if until is None else round(max(0.0, until - now), 3),
        "base_override": getattr(s, "base_override", None),
        "sync_group": getattr(s, "sync_group", None),
    }


def _extra(name: str, value: Any, now: float, wall: float) -> dict[str, Any]:
    """An InstanceStatus field this module does not know by name; `*_at` are monotonic."""
    if name.endswith("_at") and isinstance(value, float):
        return {name: round(wall + (value - now), 3), f"{name[:-3]}_in_s": round(value - now, 3)}
    return {name: jsonable_tree(value)}


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def jsonable(value: Any) -> Any:
    """`json.dumps(default=...)`: addresses and enums as text, dataclasses as objects."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, IPv4Address | IPv6Address):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def jsonable_tree(value: Any) -> Any:
    """A structure json.dumps takes without `default` (for values that get compared)."""
    return json.loads(json.dumps(value, default=jsonable))
