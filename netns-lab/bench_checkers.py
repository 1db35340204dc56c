#!/usr/bin/env python3
"""Checker benchmark (issue 7): advert jitter and CPU with and without 100 real servers checked.

r1 (priority 150, Master) and r2 (100, Backup) run the real vrrpd with N VRRPv3 instances at
100 ms adverts (VRIDs 1..N, as bench.py's load runs). Two windows, each on a fresh lab:
`none`, the VRRP instances only; `checkers`, the same plus `virtual_server` blocks with M real
servers (10 per virtual server), each with a TCP_CHECK every `delay_loop` second, on both
routers (two directors check their real servers alike). The real servers are one TCP listener
process in the client namespace bound to M addresses of 192.0.2.0/24 (192.0.2.150 on), port 80;
it counts the connections it accepts, so the checks actually made are reported too.

The host kernel has no IPVS: the real daemon would log `IPVS: Can't initialize ipvs` and run no
checker at all. So both windows run vrrpd through `vrrplab/null_ipvs.py`, which makes the IPVS
netlink calls no-ops and leaves everything else real (see that module).

Reported, never asserted, per window: the Master's advert interval jitter (per VRID gaps between
its adverts in the client's capture, kernel timestamps, minus the interval; p50 / p99 / max),
CPU % of each daemon over the window, RSS, adverts seen / expected, state changes, checks per
second seen by the listener. Results go to results/bench_checkers.jsonl with the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

from vrrplab import Lab, wait_until
from vrrplab.bench_conf import CLK_TCK, BenchSpec, bench_conf, cpu_ticks, rss_kb
from vrrplab.bench_load import _holds_all, _jitter
from vrrplab.capture import Capture
from vrrplab.netns import CLEANUP, LabError, kill_pid, netns_available, ns_exec
from vrrplab.procs import RouterProcess
from vrrplab.results import write_result

ARGV = [sys.executable, *sys.argv]
PRIOS = (150, 100)
RS_FIRST = 150  # real servers: 192.0.2.150 .. 192.0.2.(150 + M - 1)
RS_PORT = 80
PER_VS = 10
VS_PORT_BASE = 8000
NULL_IPVS = Path(__file__).resolve().parent / "vrrplab" / "null_ipvs.py"
VRRPD_ARGV = [sys.executable, str(NULL_IPVS), "-f", "{conf}", "-n", "-l", "-D", "-p", "{pid}",
              "-r", "{vrrp_pid}"]  # fmt: skip


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_checkers.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--instances", type=int, default=20)
    p.add_argument("--advert-int", type=float, default=0.1, help="seconds (VRRPv3)")
    p.add_argument("--servers", type=int, default=100, help="real servers (<= 100)")
    p.add_argument("--delay-loop", type=float, default=1.0, help="seconds between checks")
    p.add_argument("--window", type=float, default=20.0, help="measured window, seconds")
    p.add_argument("--settle", type=float, default=7.0,
                   help="s after convergence before the window (> garp_master_delay)")  # fmt: skip
    p.add_argument("--no-results", action="store_true", help="do not append to results/")
    p.add_argument("--serve", nargs="+", metavar="COUNTFILE ADDR", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 1 <= args.servers <= 100:
        p.error("--servers must be 1..100")
    return args


# -- the real servers: one listener process in the client namespace ------------------------------


def serve(count_file: str, addrs: list[str]) -> int:
    """Accept on every address, close at once (what TCP_CHECK needs), count into `count_file`."""
    accepted = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(handle, a, RS_PORT) for a in addrs]
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        while not stop.is_set():
            Path(count_file).write_text(f"{accepted}\n")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
        for s in servers:
            s.close()

    asyncio.run(main())
    return 0


def rs_addrs(n: int) -> list[str]:
    return [f"192.0.2.{RS_FIRST + i}" for i in range(n)]


def start_listener(lab: Lab, n: int) -> tuple[subprocess.Popen[bytes], Path]:
    assert lab.client is not None
    batch = "".join(f"addr add {a}/32 dev eth0\n" for a in rs_addrs(n))
    subprocess.run(["ip", "-n", lab.client.ns, "-batch", "-"], input=batch.encode(), check=True,
                   timeout=20)  # fmt: skip
    count = lab.workdir / "accepted"
    argv = [sys.executable, __file__, "--serve", str(count), *rs_addrs(n)]
    proc = subprocess.Popen(ns_exec(lab.client.ns, *argv), stdin=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    CLEANUP.pids.append(proc.pid)
    wait_until(count.exists, 10, "the real-server listener to start")
    return proc, count


def accepted(count: Path) -> int:
    try:
        return int(count.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


# -- configuration ---------------------------------------------------------------------------


def lvs_conf(spec: BenchSpec, servers: int, delay_loop: float) -> str:
    """`virtual_server` blocks on the first VIP, ports 8001..: 10 real servers each, TCP_CHECK."""
    out = []
    addrs = rs_addrs(servers)
    for i in range(0, servers, PER_VS):
        rs = "".join(
            f"    real_server {a} {RS_PORT} {{\n        weight 1\n"
            f"        TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n"
            for a in addrs[i : i + PER_VS]
        )
        out.append(
            f"virtual_server {spec.vip(1)} {VS_PORT_BASE + i // PER_VS + 1} {{\n"
            f"    delay_loop {delay_loop:g}\n    lb_algo rr\n    lb_kind DR\n"
            f"    protocol TCP\n{rs}}}\n"
        )
    return "\n".join(out)


# -- one window ------------------------------------------------------------------------------


def run_window(mode: str, args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    spec = BenchSpec(args.instances, args.advert_int, 3, 4)
    servers = args.servers if mode == "checkers" else 0
    with Lab(routers=2, tag="bc") as lab:
        listener, count = start_listener(lab, args.servers)
        try:
            rec = _measure(lab, spec, servers, args, count)
        finally:
            kill_pid(listener.pid, signal.SIGTERM)
            listener.wait(10)
            CLEANUP.pids.remove(listener.pid)
    return {"run_id": run_id, "mode": mode, "impl": "vrrpd (null IPVS)", "servers": servers,
            "delay_loop_s": args.delay_loop if servers else None, **rec}  # fmt: skip


def _measure(
    lab: Lab, spec: BenchSpec, servers: int, args: argparse.Namespace, count: Path
) -> dict[str, Any]:
    r1, r2 = lab.routers
    extra = lvs_conf(spec, servers, args.delay_loop) if servers else ""
    procs = [
        RouterProcess(n, "vrrpd", bench_conf(spec, n.name, p) + extra, lab.workdir, VRRPD_ARGV)
        for n, p in zip(lab.routers, PRIOS, strict=True)
    ]
    vips = set(spec.vips())
    assert lab.client is not None
    with Capture(lab.client.ns) as cap:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_started(30)
        wait_until(lambda: _holds_all(lab, r1, vips), 60, f"r1 to hold {len(vips)} VIPs")
        time.sleep(args.settle)
        before = [(cpu_ticks([p.pid]), p.output().count("Entering")) for p in procs]
        n0, t0 = accepted(count), time.time()
        time.sleep(args.window)
        t1, n1 = time.time(), accepted(count)
        after = [(cpu_ticks([p.pid]), p.output().count("Entering"), rss_kb([p.pid])) for p in procs]
        events = cap.events()
    logs = [p.output() for p in procs]
    for p in procs:
        if p.running():
            p.sigterm(30)
    wall = t1 - t0
    rec: dict[str, Any] = {"instances": spec.instances, "advert_int_s": spec.advert_int_s,
                           "window_s": round(wall, 3), "checks_per_s": round((n1 - n0) / wall, 1),
                           "ipvs_unavailable_logged": any("Can't initialize ipvs" in x
                                                          for x in logs)}  # fmt: skip
    for role, (b, a) in zip(("master", "backup"), zip(before, after, strict=True), strict=True):
        rec[f"{role}_cpu_pct"] = round((a[0] - b[0]) / CLK_TCK / wall * 100, 2)
        rec[f"{role}_rss_mb"] = round(a[2] / 1024, 1)
        rec[f"{role}_transitions"] = a[1] - b[1]
    rec |= _jitter(events, (r1.mac, r2.mac), spec, t0, t1)
    return rec


def table(recs: list[dict[str, Any]]) -> str:
    rows = [
        ("real servers checked", "servers", "{}"),
        ("checks/s at the listener", "checks_per_s", "{:.1f}"),
        ("Master CPU %", "master_cpu_pct", "{:.2f}"),
        ("Backup CPU %", "backup_cpu_pct", "{:.2f}"),
        ("Master RSS MB", "master_rss_mb", "{:.1f}"),
        ("advert jitter p50 ms", "jitter_p50_ms", "{:.3f}"),
        ("advert jitter p99 ms", "jitter_p99_ms", "{:.3f}"),
        ("advert jitter max ms", "jitter_max_ms", "{:.3f}"),
        ("adverts seen/expected", "adverts_seen", "{}"),
        ("state changes M+B", "master_transitions", "{}"),
    ]
    out = [f"{'':28}" + "".join(f"{r['mode']:>14}" for r in recs)]
    for label, key, fmt in rows:
        cells = []
        for r in recs:
            cell = fmt.format(r[key]) if r.get(key) is not None else "-"
            if key == "adverts_seen":
                cell = f"{r[key]}/{r['adverts_expected']}"
            if key == "master_transitions":
                cell = f"{r[key]}+{r['backup_transitions']}"
            cells.append(f"{cell:>14}")
        out.append(f"{label:28}" + "".join(cells))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.serve:
        return serve(args.serve[0], args.serve[1:])
    reason = netns_available()
    if reason:
        print(f"bench_checkers.py: {reason}", file=sys.stderr)
        return 2
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"
    print(f"bench_checkers {run_id}: {args.instances} instances at {args.advert_int:g} s, "
          f"{args.servers} real servers every {args.delay_loop:g} s")  # fmt: skip
    recs = []
    try:
        for mode in ("none", "checkers"):
            rec = run_window(mode, args, run_id)
            print(f"  {mode}: done ({rec['window_s']} s window)")
            recs.append(rec)
    except (LabError, subprocess.TimeoutExpired) as exc:
        print(f"bench_checkers.py: {exc}", file=sys.stderr)
        return 1
    if not args.no_results:
        write_result("bench_checkers", {"run_id": run_id, "windows": recs}, ARGV)
    print(table(recs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
