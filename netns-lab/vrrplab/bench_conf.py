"""Benchmark helpers: multi-instance keepalived.conf, RFC timers, /proc readings, percentiles.

VIPs come from 198.51.100.0/24 then 203.0.113.0/24 (IPv4) or 2001:db8:100::/64 (IPv6). The lab
LAN itself uses 192.0.2.0/24 and 2001:db8::/64 (vrrplab/topo.py), so the two never collide.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

VIP4_BLOCKS = ("198.51.100.", "203.0.113.")
VIP6_PREFIX = "2001:db8:100::"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class BenchSpec:
    """N instances (VRIDs 1..N) on eth0, the same for every router but for the priority."""

    instances: int = 1
    advert_int_s: float = 1.0
    version: int = 3
    family: int = 4

    def vip(self, vrid: int) -> str:
        """The address (no prefix length) of instance `vrid`."""
        if not 1 <= vrid <= 255:
            raise ValueError(f"VRID {vrid} out of 1..255")
        if self.family == 6:
            return f"{VIP6_PREFIX}{vrid:x}"
        block, host = divmod(vrid - 1, 254)
        return f"{VIP4_BLOCKS[block]}{host + 1}"

    def vips(self) -> list[str]:
        return [self.vip(v) for v in range(1, self.instances + 1)]

    def skew_s(self, priority: int) -> float:
        """RFC 5798 6.1 Skew_Time (v3: scaled by the interval); RFC 3768 6.1 for v2 (seconds)."""
        return (256 - priority) / 256 * (self.advert_int_s if self.version == 3 else 1.0)

    def master_down_s(self, priority: int) -> float:
        """Master_Down_Interval = 3 x Advertisement_Interval + Skew_Time."""
        return 3 * self.advert_int_s + self.skew_s(priority)


def bench_conf(spec: BenchSpec, router_id: str, priority: int) -> str:
    """keepalived.conf with one `vrrp_instance` per VRID; vrrpd reads the same file."""
    plen = 128 if spec.family == 6 else 32
    parts = [
        f"global_defs {{\n    router_id {router_id}\n    vrrp_version {spec.version}\n"
        "    script_user root\n}\n"
    ]
    for vrid in range(1, spec.instances + 1):
        parts.append(
            f"vrrp_instance VI_{vrid} {{\n    state BACKUP\n    interface eth0\n"
            f"    virtual_router_id {vrid}\n    priority {priority}\n"
            f"    advert_int {spec.advert_int_s:g}\n"
            f"    virtual_ipaddress {{\n        {spec.vip(vrid)}/{plen}\n    }}\n}}\n"
        )
    return "\n".join(parts)


# -- /proc readings ---------------------------------------------------------------------------


def cpu_ticks(pids: Iterable[int]) -> int:
    """utime + stime (clock ticks) summed over `pids` (fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields after ")" start at field 3
    return total


def rss_kb(pids: Iterable[int]) -> int:
    """VmRSS (kB) summed over `pids`."""
    total = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


# -- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary_ms(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """median / p95 / max in milliseconds of seconds `values` (None entries are skipped)."""
    xs = [v for v in values if v is not None]
    if not xs:
        return {"n": 0, "median_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "n": len(xs),
        "median_ms": round(percentile(xs, 50) * 1000, 3),
        "p95_ms": round(percentile(xs, 95) * 1000, 3),
        "max_ms": round(max(xs) * 1000, 3),
    }
