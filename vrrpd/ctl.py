"""`vrrpctl`: ask a running vrrpd over its control socket (docs/control.md).

    vrrpctl [-s SOCKET | -p PIDFILE] status [--json]
    vrrpctl ... reload
    vrrpctl ... priority INSTANCE N|clear
    vrrpctl ... resign INSTANCE [--for SECONDS]
    vrrpctl ... takeover INSTANCE

The socket is found as the daemon finds it: `-s`, else beside the pid file (`-p`, default
/run/vrrpd.pid -> /run/vrrpd.ctl). Exit codes: 0 done, 1 the daemon refused or failed,
2 bad usage, 3 no daemon answered. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from vrrpd.runtime.control_proto import (
    DEFAULT_PID_FILE,
    MAX_HOLD_S,
    ControlError,
    encode_request,
    parse_response,
    socket_path,
)

EXIT_OK, EXIT_DAEMON, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3
MAX_RESPONSE = 16 << 20  # a status of thousands of instances still fits
EPILOG = """\
exit codes:
  0  done
  1  the daemon answered with an error (unknown instance, refused, failed)
  2  bad usage
  3  cannot connect to the daemon, or it did not answer
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"vrrpctl: error: {message} (see vrrpctl --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="vrrpctl",
        description="Query and steer a running vrrpd through its control socket.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("-s", "--socket", metavar="SOCKET", help="the daemon's control socket")
    where.add_argument(
        "-p",
        "--pid",
        dest="pid_file",
        metavar="PIDFILE",
        help=f"the daemon's -p pid file; its socket is beside it (default {DEFAULT_PID_FILE})",
    )
    p.add_argument(
        "--timeout", type=_seconds, default=10.0, metavar="S", help="wait this long (default 10)"
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=_Parser)
    status = sub.add_parser("status", help="every instance's state, priorities, VIPs, counters")
    status.add_argument("--json", action="store_true", help="the daemon's JSON answer")
    sub.add_parser("reload", help="re-read the configuration (as SIGHUP)")
    prio = sub.add_parser("priority", help="override an instance's base priority, or clear it")
    prio.add_argument("instance")
    prio.add_argument("priority", type=_priority, metavar="N|clear", help="1..254, or clear")
    resign = sub.add_parser("resign", help="hand mastership of an instance to a peer")
    resign.add_argument("instance")
    resign.add_argument(
        "--for", dest="hold_s", type=_seconds, metavar="SECONDS", help="hold back this long"
    )
    takeover = sub.add_parser("takeover", help="become master of an instance")
    takeover.add_argument("instance")
    return p


def _priority(text: str) -> int | None:
    if text == "clear":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 1..254 or 'clear'") from None
    if not 1 <= value <= 254:
        raise argparse.ArgumentTypeError(f"{value} is not 1..254 (or 'clear')")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= MAX_HOLD_S:
        raise argparse.ArgumentTypeError(f"{text} is not 0 < seconds <= {MAX_HOLD_S:g}")
    return value


class CannotConnect(Exception):
    """No daemon at the socket, or it did not answer (exit 3)."""


def request(path: str, line: bytes, timeout: float) -> dict[str, Any]:
    """Send one request line and read one response line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        _connect(sock, path, time.monotonic() + timeout)
        try:
            sock.sendall(line)
            answer = _read_line(sock)
        except TimeoutError:
            raise CannotConnect(f"no answer from {path} within {timeout:g} s") from None
        except OSError as exc:
            raise CannotConnect(f"connection to {path} failed: {exc.strerror or exc}") from None
    if not answer:
        raise CannotConnect(f"{path} closed the connection without an answer")
    return parse_response(answer)


def _connect(sock: socket.socket, path: str, deadline: float) -> None:
    """A Unix socket whose listen backlog is full refuses a non-blocking connect with EAGAIN
    at once (it does not wait as TCP does): retry until `deadline`."""
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise CannotConnect(f"{path} is busy: no room within the timeout") from None
            time.sleep(0.01)
        except OSError as exc:
            raise CannotConnect(f"cannot connect to {path}: {exc.strerror or exc}") from None


def _read_line(sock: socket.socket) -> bytes:
    buf = bytearray()
    while b"\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_RESPONSE:
            raise ControlError("bad_response", f"the daemon's answer is over {MAX_RESPONSE} bytes")
    return bytes(buf.split(b"\n", 1)[0])


def main(argv: Sequence[str] | None = None) -> int:
    try:
        ns = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    path = socket_path(ns.socket, ns.pid_file)
    line = _encode(ns.cmd, {k: getattr(ns, k, None) for k in ("instance", "priority", "hold_s")})
    try:
        answer = request(path, line, ns.timeout)
    except CannotConnect as exc:
        print(f"vrrpctl: {exc}", file=sys.stderr)
        return EXIT_CONNECT
    except ControlError as exc:
        print(f"vrrpctl: {exc.message}", file=sys.stderr)
        return EXIT_CONNECT
    if not answer["ok"]:
        print(f"vrrpctl: {answer['error']['message']}", file=sys.stderr)
        return EXIT_DAEMON
    result = answer.get("result") or {}
    if ns.cmd == "status":
        print(json.dumps(result, indent=2) if ns.json else format_status(result))
    else:
        print(format_done(result))
    return EXIT_OK


def _encode(cmd: str, args: dict[str, Any]) -> bytes:
    if cmd == "priority":  # the one argument where null is sent on purpose
        line = json.dumps({"cmd": cmd, "instance": args["instance"], "priority": args["priority"]})
        return line.encode() + b"\n"
    return encode_request(cmd, **args)


# -- output ------------------------------------------------------------------------------------

COLUMNS = ("INSTANCE", "STATE", "PRIO", "MASTER", "INTERFACE", "VRID", "VER", "ADVERT", "VIPS")
_SHOWN = frozenset(
    {"name", "state", "base_priority", "effective_priority", "master_address", "interface"}
    | {"vrid", "version", "advert_int_s", "vips", "faults", "trackers", "counters", "family"}
    | {"last_transition", "source_address", "master_advert_int_s"}
    | {"manual", "manual_until", "manual_remaining_s", "base_override", "sync_group"}
)


def format_status(result: dict[str, Any]) -> str:
    """A table with one row per instance, then what needs attention below each row's name."""
    instances = result.get("instances") or []
    if not instances:
        return "no VRRP instances configured"
    rows = [COLUMNS, *(_row(i) for i in instances)]
    widths = [max(len(r[c]) for r in rows) for c in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]  # fmt: skip
    details = [d for i in instances for d in _details(i)]
    return "\n".join(lines + (["", *details] if details else []))


def _row(i: dict[str, Any]) -> tuple[str, ...]:
    base, eff = i.get("base_priority"), i.get("effective_priority")
    prio = f"{eff}" if base == eff else f"{eff} (base {base})"
    return (
        str(i.get("name", "?")),
        str(i.get("state", "?")),
        prio,
        str(i.get("master_address") or "-"),
        str(i.get("interface") or "-"),
        str(i.get("vrid", "?")),
        str(i.get("version", "?")),
        f"{i.get('advert_int_s', 0):g}s",
        ",".join(i.get("vips") or []) or "-",
    )


def _details(i: dict[str, Any]) -> list[str]:
    name = i.get("name", "?")
    out = []
    last = i.get("last_transition")
    if last:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["at"]))
        out.append(f"  last change {when} ({last['ago_s']:.0f} s ago): {last['reason']}")
    out += _manual_lines(i)
    if i.get("faults"):
        out.append(f"  faults: {'; '.join(i['faults'])}")
    if i.get("trackers"):
        out.append(f"  trackers: {json.dumps(i['trackers'], separators=(', ', ': '))}")
    counters = i.get("counters") or {}
    nonzero = {k: v for k, v in counters.items() if v}
    if nonzero:
        out.append("  counters: " + ", ".join(f"{k}={v}" for k, v in nonzero.items()))
    extra = {k: v for k, v in i.items() if k not in _SHOWN and v not in (None, False, [], {})}
    out += [f"  {k}: {v}" for k, v in extra.items()]
    return [f"{name}:", *out] if out else []


def _manual_lines(i: dict[str, Any]) -> list[str]:
    out = []
    if i.get("manual"):
        left = i.get("manual_remaining_s")
        hold = f" ({left:.1f} s left)" if left is not None else ""
        out.append(f"  manual: {i['manual']}{hold}")
    if i.get("base_override") is not None:
        out.append(f"  base priority overridden to {i['base_override']} (clear: vrrpctl priority "
                   f"{i.get('name')} clear)")  # fmt: skip
    if i.get("sync_group"):
        out.append(f"  sync group: {i['sync_group']}")
    return out


def format_done(result: dict[str, Any]) -> str:
    """`reload requested`, or what was done and the instance as it is now."""
    message = str(result.get("message", "done"))
    inst = result.get("instance")
    if not inst:
        return message
    base, eff = inst.get("base_priority"), inst.get("effective_priority")
    return f"{message}: {inst.get('name')} is {inst.get('state')}, priority {eff} (base {base})"


if __name__ == "__main__":
    sys.exit(main())
