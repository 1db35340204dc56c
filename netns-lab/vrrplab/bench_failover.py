"""Failover benchmark: r1 (priority 150) is Master, r2 (100) Backup; break r1, time r2's takeover.

One lab per (implementation, interval, family, scenario) and `reps` failures in it; r1 is put back
(restarted, or its link brought up) between failures. The client's kernel-timestamped capture is
the only clock: every number is a difference of two frame times, or of a frame time and the
wall-clock instant the failure was injected.

Scenarios and what is subtracted (RFC 5798 6.1 / 6.4.2):
- kill9, linkdown: (last advert of r1 -> first advert of r2) - r2's Master_Down_Interval.
- sigterm: (r1's priority-0 advert -> first advert of r2) - r2's Skew_Time.
- preempt: r1's link comes back up while r2 is Master: (link up -> first advert of r1) - r1's
  Master_Down_Interval (a Backup that ignores lower-priority adverts waits for its timer);
  measured on the way back of every linkdown failure, so it costs nothing extra.
For every scenario also: injection -> first gratuitous ARP (IPv6: unsolicited NA) for the VIP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vrrplab.bench_conf import BenchSpec, bench_conf, summary_ms
from vrrplab.capture import Capture, Event, decode
from vrrplab.netns import LabError, wait_until
from vrrplab.procs import RouterProcess
from vrrplab.topo import Lab, Node

SCENARIOS = ("kill9", "sigterm", "linkdown", "preempt")
PRIOS = (150, 100)
VRID = 1


class Tail:
    """Incremental decoding of a Capture (decoding everything on every poll is too slow)."""

    def __init__(self, cap: Capture) -> None:
        self.cap, self.seen, self.events = cap, 0, list[Event]()

    def update(self) -> list[Event]:
        frames = self.cap.snapshot()
        new = [e for t, f in frames[self.seen :] if (e := decode(t, f)) is not None]
        self.seen = len(frames)
        self.events.extend(new)
        return self.events

    def adverts(self, mac: str, since: float, vrid: int = VRID) -> list[Event]:
        return [
            e
            for e in self.update()
            if e.kind == "advert" and e.src_mac == mac and e.vrid == vrid and e.t > since
        ]

    def announces(self, mac: str, vip: str, since: float) -> list[Event]:
        """Gratuitous ARPs (sender = VIP) or unsolicited NAs (target = VIP) sent by `mac`."""
        return [
            e
            for e in self.update()
            if e.src_mac == mac
            and e.t > since
            and ((e.kind == "arp" and e.src == vip) or (e.kind == "na" and e.target == vip))
        ]


@dataclass
class FailoverCase:
    impl: str
    scenario: str  # kill9 | sigterm | linkdown (which also yields preempt records)
    spec: BenchSpec
    reps: int


class FailoverBench:
    def __init__(self, case: FailoverCase, say: Callable[[str], None] = print) -> None:
        self.case, self.spec, self.say = case, case.spec, say
        self.vip = self.spec.vip(VRID)

    def run(self) -> list[dict[str, Any]]:
        with Lab(routers=2, tag="bf") as lab:
            r1, r2 = lab.routers
            procs = [
                RouterProcess(n, self.case.impl, bench_conf(self.spec, n.name, p), lab.workdir)
                for n, p in zip(lab.routers, PRIOS, strict=True)
            ]
            records: list[dict[str, Any]] = []
            with Capture(lab.client.ns if lab.client else "") as cap:
                tail = Tail(cap)
                for p in procs:
                    p.start()
                for p in procs:
                    p.wait_started(20)
                for i in range(self.case.reps):
                    self._wait_master(lab, tail, r1, r2)
                    got = self._one(lab, tail, procs)
                    for rec in got:
                        rec["rep"] = i + 1
                        self.say(_line(rec))
                    records += got
            for p in procs:
                if p.running():
                    p.sigterm()
        return records

    def _wait_master(self, lab: Lab, tail: Tail, r1: Node, r2: Node) -> None:
        """r1 holds the VIP, and r2 has been silent for 3 intervals + a margin."""
        adv = self.spec.advert_int_s
        down = self.spec.master_down_s(PRIOS[0])
        wait_until(lambda: lab.owners(self.vip) == ["r1"], 3 * down + 20, "r1 to own the VIP")
        quiet = 3 * adv + 0.2

        def settled() -> bool:
            now = time.time()
            return not tail.adverts(r2.mac, now - quiet) and bool(tail.adverts(r1.mac, now - adv))

        time.sleep(quiet)
        wait_until(settled, 3 * down + 20, "r2 to go quiet", interval=0.05)

    def _one(self, lab: Lab, tail: Tail, procs: list[RouterProcess]) -> list[dict[str, Any]]:
        r1, r2 = lab.routers
        scenario = self.case.scenario
        if scenario == "kill9":
            t_inj = procs[0].kill9()
        elif scenario == "sigterm":
            t_inj = procs[0].sigterm()
        else:
            t_inj = time.time()
            lab.link_down(r1)
        rec = self._takeover(tail, old=r1, new=r2, t_inj=t_inj, scenario=scenario)
        if scenario == "linkdown":
            t_up = time.time()
            lab.link_up(r1)
            return [rec, self._takeover(tail, old=r2, new=r1, t_inj=t_up, scenario="preempt")]
        procs[0].start()
        procs[0].wait_started(20)
        return [rec]

    def _takeover(self, tail: Tail, old: Node, new: Node, t_inj: float, scenario: str) -> dict:
        """Wait for `new`'s first advert (and announcement) after `t_inj`; compute the numbers."""
        spec, prio = self.spec, PRIOS[0] if new.name == "r1" else PRIOS[1]
        down = spec.master_down_s(prio)
        first = wait_until(
            lambda: tail.adverts(new.mac, t_inj), down + 10, f"{new.name}'s first advert"
        )[0]
        garps = _wait_quietly(lambda: tail.announces(new.mac, self.vip, t_inj), 1.0 + 5 * down)
        old_adv = tail.adverts(old.mac, t_inj - 10 * spec.advert_int_s - 1)
        rec: dict[str, Any] = {
            "impl": self.case.impl,
            "scenario": scenario,
            "family": spec.family,
            "version": spec.version,
            "advert_int_s": spec.advert_int_s,
            "master_down_interval_s": round(down, 6),
            "skew_time_s": round(spec.skew_s(prio), 6),
            "inj_to_first_advert_s": round(first.t - t_inj, 6),
            "inj_to_first_garp_s": round(garps[0].t - t_inj, 6) if garps else None,
        }
        if scenario == "preempt":
            rec["excess_s"] = round(first.t - t_inj - down, 6)
            later = [e.t for e in old_adv if e.t >= first.t and e.priority > 0]
            rec["old_master_yield_s"] = round(max(later) - first.t, 6) if later else 0.0
            return rec
        alive = [e.t for e in old_adv if e.t <= first.t and e.priority > 0]
        if not alive:
            raise LabError(f"no advert from {old.name} before the takeover")
        rec["takeover_s"] = round(first.t - max(alive), 6)
        if scenario == "sigterm":
            zero = [e.t for e in old_adv if e.priority == 0 and e.t >= t_inj]
            rec["prio0_seen"] = bool(zero)
            base, ref = (zero[0], spec.skew_s(prio)) if zero else (max(alive), down)
            rec["excess_s"] = round(first.t - base - ref, 6)
        else:
            rec["excess_s"] = round(first.t - max(alive) - down, 6)
        return rec


def _wait_quietly(pred: Callable[[], list[Event]], timeout: float) -> list[Event]:
    try:
        return wait_until(pred, timeout, "announcement", interval=0.02)
    except LabError:
        return []


def _line(rec: dict[str, Any]) -> str:
    garp = rec["inj_to_first_garp_s"]
    garp_txt = f"{garp * 1000:8.2f} ms" if garp is not None else "    none"
    return (
        f"  {rec['impl']:10} {rec['scenario']:8} v{rec['version']} IPv{rec['family']} "
        f"adv {rec['advert_int_s'] * 1000:6.0f} ms  rep {rec['rep']:2}: "
        f"excess {rec['excess_s'] * 1000:8.2f} ms  inj->GARP {garp_txt}"
    )


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (impl, scenario, family, version, interval): median / p95 / max."""
    keys: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        k = (r["impl"], r["scenario"], r["family"], r["version"], r["advert_int_s"])
        keys.setdefault(k, []).append(r)
    rows = []
    for (impl, scen, fam, ver, adv), rs in keys.items():
        rows.append(
            {
                "impl": impl,
                "scenario": scen,
                "family": fam,
                "version": ver,
                "advert_int_s": adv,
                "excess": summary_ms([r["excess_s"] for r in rs]),
                "inj_to_garp": summary_ms([r["inj_to_first_garp_s"] for r in rs]),
                "garp_missing": sum(r["inj_to_first_garp_s"] is None for r in rs),
            }
        )
    return rows
