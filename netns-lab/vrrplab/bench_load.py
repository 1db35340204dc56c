"""Load benchmark: N instances on two routers, measured in steady state.

r1 (priority 150) is Master of VRIDs 1..N, r2 (100) Backup; r1 starts first, r2 once every VIP
sits on r1. After a settle time, a window of `window_s` seconds is measured:
- CPU %: utime + stime from /proc/PID/stat over the window, summed over the daemon's processes
  (keepalived: parent + VRRP child; vrrpd: one process), for the Master and the Backup;
- RSS: /proc/PID/status VmRSS summed the same way, at the end of the window;
- advert interval jitter: per VRID, gaps between r1's adverts seen by the client capture (kernel
  timestamps) minus the interval; p50 / p99 / max of the absolute value, plus the signed mean;
- spurious transitions: "Entering" lines added to either log during the window, and adverts from
  r2 (which should be silent) in the window.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any

from vrrplab.bench_conf import CLK_TCK, BenchSpec, bench_conf, cpu_ticks, percentile, rss_kb
from vrrplab.capture import Capture, Event
from vrrplab.netns import wait_until
from vrrplab.procs import RouterProcess
from vrrplab.topo import Lab, Node

PRIOS = (150, 100)


def _pids(p: RouterProcess) -> list[int]:
    return sorted({p.pid, *([v] if (v := p.vrrp_pid()) else [])})


def _entering(p: RouterProcess) -> int:
    return p.output().count("Entering")


def _holds_all(lab: Lab, node: Node, vips: set[str]) -> bool:
    try:
        have = {str(ip_address(a["local"])) for a in lab.addresses(node)}
    except subprocess.TimeoutExpired:
        return False  # seen with keepalived, 200 instances at 100 ms: `ip addr` dump stalls
    return vips <= have


def run_load(
    impl: str, spec: BenchSpec, window_s: float, settle_s: float, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """One measured window; returns one result record."""
    with Lab(routers=2, tag="bl") as lab:
        r1, r2 = lab.routers
        procs = [
            RouterProcess(n, impl, bench_conf(spec, n.name, p), lab.workdir)
            for n, p in zip(lab.routers, PRIOS, strict=True)
        ]
        vips = set(spec.vips())
        assert lab.client is not None
        with Capture(lab.client.ns) as cap:
            # The Master first, then the Backup once every VIP is up: started together, two
            # keepalived with 200 instances at 100 ms could take more than 30 s of flapping to
            # settle on this 2-CPU machine (its log: "A thread timer expired 1.3 seconds ago").
            # Steady state, which the window measures, is the same either way.
            t_start = time.monotonic()
            procs[0].start()
            procs[0].wait_started(30)
            limit = 3 * spec.master_down_s(PRIOS[1]) + 30
            wait_until(
                lambda: _holds_all(lab, r1, vips), limit, f"r1 to hold {len(vips)} VIPs", 0.2
            )
            procs[1].start()
            procs[1].wait_started(30)
            converged_s = time.monotonic() - t_start
            time.sleep(settle_s)
            before = [(cpu_ticks(_pids(p)), _entering(p)) for p in procs]
            t0 = time.time()
            time.sleep(window_s)
            t1 = time.time()
            after = [(cpu_ticks(_pids(p)), _entering(p), rss_kb(_pids(p))) for p in procs]
            events = cap.events()
        for p in procs:
            if p.running():
                p.sigterm(30)
    wall = t1 - t0
    rec: dict[str, Any] = {
        "impl": impl,
        "instances": spec.instances,
        "version": spec.version,
        "family": spec.family,
        "advert_int_s": spec.advert_int_s,
        "window_s": round(wall, 3),
        "converged_s": round(converged_s, 2),
    }
    for role, (b, a) in zip(("master", "backup"), zip(before, after, strict=True), strict=True):
        rec[f"{role}_cpu_pct"] = round((a[0] - b[0]) / CLK_TCK / wall * 100, 2)
        rec[f"{role}_rss_mb"] = round(a[2] / 1024, 1)
        rec[f"{role}_transitions"] = a[1] - b[1]
    rec |= _jitter(events, (r1.mac, r2.mac), spec, t0, t1)
    say(_line(rec))
    return rec


def _jitter(
    events: list[Event], macs: tuple[str, str], spec: BenchSpec, t0: float, t1: float
) -> dict[str, Any]:
    m_mac, b_mac = macs
    per_vrid: dict[int, list[float]] = defaultdict(list)
    backup_adverts = 0
    for e in events:
        if e.kind != "advert" or not t0 <= e.t <= t1:
            continue
        if e.src_mac == m_mac:
            per_vrid[e.vrid].append(e.t)
        elif e.src_mac == b_mac:
            backup_adverts += 1
    devs = []
    for times in per_vrid.values():
        times.sort()
        devs += [b - a - spec.advert_int_s for a, b in itertools.pairwise(times)]
    absd = [abs(d) for d in devs]
    expected = spec.instances * (t1 - t0) / spec.advert_int_s
    return {
        "adverts_seen": sum(len(t) for t in per_vrid.values()),
        "adverts_expected": round(expected),
        "backup_adverts": backup_adverts,
        "jitter_p50_ms": round(percentile(absd, 50) * 1000, 3),
        "jitter_p99_ms": round(percentile(absd, 99) * 1000, 3),
        "jitter_max_ms": round(max(absd, default=float("nan")) * 1000, 3),
        "gap_mean_dev_ms": round(sum(devs) / len(devs) * 1000, 3) if devs else None,
    }


def _line(r: dict[str, Any]) -> str:
    return (
        f"  {r['impl']:10} {r['instances']:3} inst v{r['version']} "
        f"adv {r['advert_int_s'] * 1000:5.0f} ms: CPU M {r['master_cpu_pct']:5.1f}% "
        f"B {r['backup_cpu_pct']:5.1f}%  RSS M {r['master_rss_mb']:5.1f} MB "
        f"B {r['backup_rss_mb']:5.1f} MB  jitter p50 {r['jitter_p50_ms']:.3f} "
        f"p99 {r['jitter_p99_ms']:.3f} ms  adverts {r['adverts_seen']}/{r['adverts_expected']}  "
        f"transitions {r['master_transitions']}+{r['backup_transitions']}"
    )
