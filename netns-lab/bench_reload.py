#!/usr/bin/env python3
"""Reload benchmark (issue 6): N SIGHUP reloads in a row while the client pings the VIP.

r1 (priority 150, MASTER) and r2 (priority 100, BACKUP) run VRRPv3 at 100 ms adverts with two
instances: VI_1 (VRID 51, VIP 192.0.2.100) never changes; VI_2 (VRID 52, VIP 192.0.2.102) gains
and loses an excluded VIP (192.0.2.103) on every reload, so each reload has work to do (an
address added and announced, or removed) without changing what the adverts carry. The client
pings 192.0.2.100 every 10 ms and captures the LAN with kernel timestamps. Each round rewrites
the config and sends SIGHUP to r1, then r2 (`--routers r1`: the Master only), waiting for
`Reload complete` in each log; the next round follows at once, or after `--pause` seconds.

Reported, never asserted: state changes (`Entering ... STATE` lines in either log during the
run; keepalived's semantics say 0), missed advert intervals (gaps between the Master's adverts
for each VRID longer than 1.5 x the interval, from the client's capture), adverts from the
Backup, lost pings and the longest gap between replies, and the reload time: SIGHUP ->
`Reload complete` in the log (polled every millisecond), and for vrrpd also its own `Reload
finished in N usec` (from the signal's handling to the end, services included). Results
are appended to results/bench_reload.jsonl with the command line.
"""

from __future__ import annotations

import argparse
import itertools
import re
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vrrplab import Lab, wait_until
from vrrplab.capture import Capture, Event
from vrrplab.netns import LabError, kill_pid, netns_available
from vrrplab.ping import Pinger
from vrrplab.procs import STATE_LINE, RouterProcess
from vrrplab.results import write_result

ARGV = [sys.executable, *sys.argv]
VIP, VIP2, EXTRA = "192.0.2.100", "192.0.2.102", "192.0.2.103"
FINISHED = re.compile(r"Reload finished in (\d+) usec")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_reload.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--reloads", type=int, default=100)
    p.add_argument("--advert-int", type=float, default=0.1, help="seconds (VRRPv3)")
    p.add_argument("--ping-interval", type=float, default=0.01, help="seconds")
    p.add_argument("--impls", default="vrrpd,keepalived", help="comma list (default: both)")
    p.add_argument("--routers", choices=("r1", "both"), default="both",
                   help="reload the Master only, or both routers each round")  # fmt: skip
    p.add_argument("--pause", type=float, default=0.0, help="seconds between rounds")
    p.add_argument("--no-results", action="store_true", help="do not append to results/")
    return p.parse_args(argv)


def conf(name: str, priority: int, adv: float, extra: bool) -> str:
    excluded = f"    virtual_ipaddress_excluded {{\n        {EXTRA}/24\n    }}\n" if extra else ""
    out = f"global_defs {{\n    router_id {name}\n    script_user root\n}}\n"
    for iname, vrid, vip, more in (("VI_1", 51, VIP, ""), ("VI_2", 52, VIP2, excluded)):
        out += (
            f"\nvrrp_instance {iname} {{\n    state BACKUP\n    interface eth0\n"
            f"    virtual_router_id {vrid}\n    priority {priority}\n    version 3\n"
            f"    advert_int {adv:g}\n    virtual_ipaddress {{\n        {vip}/24\n    }}\n"
            f"{more}}}\n"
        )
    return out


def run_one(impl: str, args: argparse.Namespace) -> dict[str, Any]:
    adv = args.advert_int
    with Lab(routers=2, tag="rl") as lab:
        nodes = lab.routers
        procs = [
            RouterProcess(node, impl, conf(node.name, prio, adv, False), lab.workdir)
            for node, prio in zip(nodes, (150, 100), strict=True)
        ]
        try:
            for p in procs:
                p.start()
            for p in procs:
                p.wait_started()
            wait_until(lambda: lab.owners(VIP) == ["r1"] and lab.owners(VIP2) == ["r1"], 15,
                       "r1 to hold both VIPs")  # fmt: skip
            wait_until(lambda: procs[1].states().count("BACKUP") >= 2, 10, "r2 in BACKUP")
            return _measure(impl, lab, procs, args)
        finally:
            for p in reversed(procs):  # the Backup first: nobody takes over on the way out
                if p.running():
                    p.sigterm()


def _measure(impl: str, lab: Lab, procs: list[RouterProcess], args: argparse.Namespace) -> dict:
    adv = args.advert_int
    reloaded = procs if args.routers == "both" else procs[:1]
    marks = [p.mark() for p in procs]
    assert lab.client is not None
    pinger = Pinger(lab.client.ns, VIP, lab.workdir / "ping.txt", args.ping_interval)
    with Capture(lab.client.ns) as cap:
        pinger.start()
        time.sleep(3 * adv)  # a baseline of adverts before the first reload
        t_first = time.time()
        wall = _rounds(reloaded, args)
        time.sleep(3 * adv)
        t_last = time.time()
        stats = pinger.stop()
        events = [e for e in cap.events() if e.kind == "advert" and t_first - adv <= e.t <= t_last]
    transitions = {
        p.node.name: [f"({m['inst']}) {m['state']}" for m in STATE_LINE.finditer(p.output(mk))]
        for p, mk in zip(procs, marks, strict=True)
    }
    usec = [
        int(x) for p, mk in zip(procs, marks, strict=True) for x in FINISHED.findall(p.output(mk))
    ]
    r1, r2 = lab.routers
    return {
        "impl": impl,
        "reloads": args.reloads,
        "routers_reloaded": len(reloaded),
        "advert_int_s": adv,
        "ping_interval_s": args.ping_interval,
        "pause_s": args.pause,
        "window_s": round(t_last - t_first, 2),
        "state_changes": sum(len(v) for v in transitions.values()),
        "transitions": transitions,
        "vrid51_unchanged": _gaps(events, r1.mac, 51, adv),
        "vrid52_changed": _gaps(events, r1.mac, 52, adv),
        "backup_adverts": sum(1 for e in events if e.src_mac == r2.mac),
        "pings_sent": stats.sent,
        "pings_lost": stats.lost,
        "ping_max_gap_ms": round(stats.max_gap_s * 1000, 1),
        "reload_usec": _spread(usec),
        "sighup_to_complete_ms": _spread([round(w * 1000, 1) for w in wall]),
    }


def _rounds(reloaded: list[RouterProcess], args: argparse.Namespace) -> list[float]:
    """Each round: rewrite, SIGHUP, wait for `Reload complete`, router after router."""
    wall: list[float] = []
    for i in range(args.reloads):
        for p, prio in zip(reloaded, (150, 100), strict=False):
            mark = p.mark()
            p.conf.write_text(conf(p.node.name, prio, args.advert_int, extra=i % 2 == 0))
            t0 = time.monotonic()
            kill_pid(p.pid, signal.SIGHUP)
            wait_until(lambda p=p, m=mark: "Reload complete" in p.output(m), 15,
                       f"{p.node.name} reload {i + 1}", interval=0.001)  # fmt: skip
            wall.append(time.monotonic() - t0)
        time.sleep(args.pause)
    return wall


def _gaps(events: list[Event], mac: str, vrid: int, adv: float) -> dict[str, Any]:
    """Gaps between one Master's adverts for `vrid` (priority 0 aside); a gap over 1.5
    intervals is a missed interval."""
    times = sorted(e.t for e in events if e.src_mac == mac and e.vrid == vrid and e.priority > 0)
    diffs = [b - a for a, b in itertools.pairwise(times)]
    return {
        "adverts": len(times),
        "missed_intervals": sum(1 for d in diffs if d > 1.5 * adv),
        "max_gap_ms": round(max(diffs, default=0.0) * 1000, 1),
    }


def _spread(values: list[Any]) -> dict[str, Any] | None:
    if not values:
        return None
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    median = round(statistics.median(ordered), 2)
    return {"median": median, "p95": p95, "max": ordered[-1], "n": len(values)}


def _mpm(spread: dict[str, Any]) -> str:
    return "/".join(str(spread.get(k, "-")) for k in ("median", "p95", "max")) if spread else "-"


def table(records: list[dict[str, Any]]) -> str:
    head = ("impl", "reloads", "state chg", "missed adv 51/52", "max gap 51 ms", "pings lost",
            "ping gap ms", "SIGHUP->complete ms", "logged reload us")  # fmt: skip
    rows = [head]
    for r in records:
        w, u = r["sighup_to_complete_ms"] or {}, r["reload_usec"] or {}
        rows.append((
            r["impl"], str(r["reloads"] * r["routers_reloaded"]), str(r["state_changes"]),
            f"{r['vrid51_unchanged']['missed_intervals']}/{r['vrid52_changed']['missed_intervals']}",
            str(r["vrid51_unchanged"]["max_gap_ms"]), f"{r['pings_lost']}/{r['pings_sent']}",
            str(r["ping_max_gap_ms"]), _mpm(w), _mpm(u),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(n) for c, n in zip(row, widths, strict=True)) for row in rows
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    reason = netns_available()
    if reason:
        print(f"bench_reload.py: {reason}", file=sys.stderr)
        return 2
    records = []
    for impl in args.impls.split(","):
        print(f"{impl}: {args.reloads} reloads at advert_int {args.advert_int:g} s ...")
        try:
            rec = run_one(impl, args)
        except LabError as exc:
            print(f"  {impl}: FAILED: {exc}")
            rec = {"impl": impl, "error": str(exc)}
        if not args.no_results:
            write_result("bench_reload", rec, ARGV)
        if "error" not in rec:
            records.append(rec)
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
