#!/usr/bin/env python3
"""Failover and load benchmarks, vrrpd and keepalived side by side (`make bench`; issue 4).

Failover: kill -9, link down, SIGTERM and preempt at advert_int 1 s, 100 ms and 10 ms (VRRPv3,
IPv4; IPv6 at 100 ms), median / p95 / max of the takeover minus Master_Down_Interval (SIGTERM:
minus Skew_Time after the priority-0 advert) and of injection -> first gratuitous ARP / NA.
Load: 1, 50 and 200 instances at 1 s (VRRPv2) and 100 ms (VRRPv3): CPU %, RSS, advert interval
jitter, spurious transitions. Numbers are measured and reported, never asserted.

Raw records go to results/bench_failover.jsonl and results/bench_load.jsonl, summaries to
results/bench_summary.jsonl, each line with the exact command line and a timestamp. Root only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vrrplab.bench_conf import BenchSpec
from vrrplab.bench_failover import SCENARIOS, FailoverBench, FailoverCase, summarise
from vrrplab.bench_load import run_load
from vrrplab.bench_report import failover_table, load_table
from vrrplab.netns import LabError, netns_available
from vrrplab.results import write_result

ARGV = [sys.executable, *sys.argv]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions, shorter windows")
    p.add_argument("--impls", default="vrrpd,keepalived", help="comma list (default: both)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of " +
                   ", ".join(SCENARIOS) + " (preempt rides on linkdown)")  # fmt: skip
    p.add_argument("--intervals", default="1,0.1,0.01", help="failover advert_int list, seconds")
    p.add_argument("--reps", type=int, help="failovers per case (default 3 at 1 s, 10 below)")
    p.add_argument("--ipv6", choices=("on", "off"), default="on",
                   help="also run the failover cases over IPv6 at 100 ms")  # fmt: skip
    p.add_argument("--load-sizes", default="1,50,200", help="instance counts")
    p.add_argument("--window", type=float, help="load window, s (default 10; quick 4)")
    p.add_argument("--settle", type=float, default=7.0,
                   help="s after convergence before the window (> garp_master_delay)")  # fmt: skip
    p.add_argument("--skip", choices=("failover", "load"), action="append", default=[])
    p.add_argument("--no-results", action="store_true", help="do not append to results/")
    return p.parse_args(argv)


def reps_for(args: argparse.Namespace, adv: float) -> int:
    if args.reps:
        return args.reps
    if args.quick:
        return 1 if adv >= 1 else 3
    return 3 if adv >= 1 else 10


def failover(args: argparse.Namespace, impls: list[str], run_id: str) -> list[dict[str, Any]]:
    wanted = args.scenarios.split(",")
    runs = [s for s in ("kill9", "sigterm", "linkdown") if s in wanted]
    if "preempt" in wanted and "linkdown" not in runs:
        runs.append("linkdown")
    cases = [(float(a), 4) for a in args.intervals.split(",")]
    if args.ipv6 == "on":
        cases.append((0.1, 6))
    records: list[dict[str, Any]] = []
    for adv, family in cases:
        spec = BenchSpec(1, adv, 3, family)
        for scenario in runs:
            for impl in impls:
                case = FailoverCase(impl, scenario, spec, reps_for(args, adv))
                got = [r for r in FailoverBench(case).run() if r["scenario"] in wanted]
                for r in got:
                    r["run_id"] = run_id
                    record("bench_failover", r, args)
                records += got
    return records


def load(args: argparse.Namespace, impls: list[str], run_id: str) -> list[dict[str, Any]]:
    window = args.window or (4.0 if args.quick else 10.0)
    out = []
    for adv, version in ((1.0, 2), (0.1, 3)):
        for n in (int(x) for x in args.load_sizes.split(",")):
            for impl in impls:
                spec = BenchSpec(n, adv, version, 4)
                try:
                    rec = run_load(impl, spec, window, args.settle)
                except (LabError, subprocess.TimeoutExpired) as exc:
                    print(f"  {impl} {n} instances at {adv:g} s: FAILED: {exc}")
                    rec = {"impl": impl, "instances": n, "advert_int_s": adv, "error": str(exc)}
                rec["run_id"] = run_id
                record("bench_load", rec, args)
                out.append(rec)
    return out


def record(name: str, numbers: dict[str, Any], args: argparse.Namespace) -> None:
    if not args.no_results:
        write_result(name, numbers, ARGV)


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load1 = os.getloadavg()[0]
    return f"{os.cpu_count()} CPUs ({model}), kernel {os.uname().release}, load {load1:.2f}"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    reason = netns_available()
    if reason:
        print(f"bench.py: {reason}", file=sys.stderr)
        return 2
    impls = args.impls.split(",")
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"
    print(f"bench {run_id} on {machine()}")
    t0 = time.monotonic()
    try:
        fo = [] if "failover" in args.skip else failover(args, impls, run_id)
        ld = [] if "load" in args.skip else load(args, impls, run_id)
    except LabError as exc:
        print(f"bench.py: {exc}", file=sys.stderr)
        return 1
    summary = {"run_id": run_id, "machine": machine(), "quick": args.quick,
               "duration_s": round(time.monotonic() - t0), "failover": summarise(fo),
               "load": ld}  # fmt: skip
    record("bench_summary", summary, args)
    print(f"\nfinished in {summary['duration_s']} s; {machine()}\n")
    if fo:
        print(failover_table(summary["failover"]) + "\n")
    if ld:
        print(load_table(ld))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
