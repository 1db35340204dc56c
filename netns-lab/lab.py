#!/usr/bin/env python3
"""netns lab CLI: `rehearse` (the narrated failover run behind `make lab`) and `cleanup`.

Root only. Every namespace is created, and removed, by this process; see vrrplab/netns.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vrrplab.netns import LabError, delete_ns, netns_available
from vrrplab.procs import IMPLS, InstanceSpec
from vrrplab.rehearse import FAILURES, Rehearsal, leftovers
from vrrplab.results import write_result


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lab.py", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    reh = sub.add_parser("rehearse", help="two routers, kill the Master, measure the takeover")
    reh.add_argument("--impl", choices=sorted(IMPLS), default="vrrpd")
    reh.add_argument("--cmd", help="implementation argv template, e.g. "
                     "'python -m vrrpd -f {conf} -n -l -D -p {pid} -r {vrrp_pid}'")  # fmt: skip
    reh.add_argument("--failure", choices=FAILURES, default="kill9")
    reh.add_argument("--advert-int", type=float, default=1.0, help="seconds (0.1 needs v3)")
    reh.add_argument("--version", type=int, choices=(2, 3), default=3, dest="vrrp_version")
    reh.add_argument("--runs", type=int, default=1)
    reh.add_argument("--no-results", action="store_true", help="do not append to results/")
    sub.add_parser("cleanup", help="remove lab namespaces left by dead lab processes")
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["rehearse", *argv])
    return args


def rehearse(args: argparse.Namespace, argv: list[str]) -> int:
    spec = InstanceSpec(advert_int_s=args.advert_int, version=args.vrrp_version)
    template = args.cmd.split() if args.cmd else None
    for i in range(args.runs):
        if args.runs > 1:
            print(f"--- run {i + 1}/{args.runs}")
        numbers = Rehearsal(args.impl, args.failure, spec, template).run()
        if not args.no_results:
            path = write_result("rehearse", numbers, [sys.executable, __file__, *argv])
            print(f"results appended to {path}")
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    reason = netns_available()
    if reason:
        print(f"lab.py: {reason}", file=sys.stderr)
        return 2
    try:
        if args.command == "cleanup":
            for ns in leftovers():
                print(f"removing {ns}")
                delete_ns(ns)
            return 0
        return rehearse(args, argv)
    except LabError as exc:
        print(f"lab.py: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
