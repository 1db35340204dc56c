"""The failover rehearsal behind `make lab`: two routers, a client pinging the VIP, one failure.

r1 (priority 150) and r2 (priority 100) run the same keepalived.conf shape; r1 becomes Master.
The client pings the VIP every 10 ms while a kernel-timestamped capture records adverts, ARP and
NAs. Then the Master is broken (kill -9 by default) and we measure, from the client's point of
view: takeover (last advert of the old Master -> first advert of the new one, next to RFC 5798
Master_Down_Interval), time to the first gratuitous ARP, and pings lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from ipaddress import ip_interface
from typing import Any

from vrrplab.capture import Capture, Event
from vrrplab.netns import LabError, run, wait_until
from vrrplab.ping import Pinger
from vrrplab.procs import InstanceSpec, RouterProcess, keepalived_conf
from vrrplab.topo import Lab

FAILURES = ("kill9", "sigterm", "linkdown", "partition")
PRIORITIES = (150, 100)


@dataclass
class Rehearsal:
    impl: str = "vrrpd"
    failure: str = "kill9"
    spec: InstanceSpec = field(default_factory=InstanceSpec)
    argv: list[str] | None = None  # an implementation command template (see procs.IMPLS)
    say: Any = print

    @property
    def vip(self) -> str:
        return str(ip_interface(self.spec.vip).ip)

    def run(self) -> dict[str, Any]:
        if self.failure not in FAILURES:
            raise LabError(f"unknown failure {self.failure!r}; choose one of {FAILURES}")
        with Lab(routers=2, tag="rh") as lab:
            return self._run(lab)

    def _run(self, lab: Lab) -> dict[str, Any]:
        r1, r2 = lab.routers
        assert lab.client is not None
        procs = [
            RouterProcess(
                node, self.impl, keepalived_conf(node, self.spec, prio), lab.workdir, self.argv
            )
            for node, prio in zip(lab.routers, PRIORITIES, strict=True)
        ]
        self.say(f"lab {lab.prefix}: r1 {r1.addr4.ip} (prio 150), r2 {r2.addr4.ip} (prio 100), "
                 f"client {lab.client.addr4.ip}; VIP {self.vip}; {self.impl}, VRRPv"
                 f"{self.spec.version}, advert_int {self.spec.advert_int_s:g} s")  # fmt: skip
        with Capture(lab.client.ns) as cap:
            for p in procs:
                p.start()
            for p in procs:
                p.wait_started()
            down = self.spec.master_down_s(PRIORITIES[1])
            wait_until(lambda: lab.owners(self.vip) == ["r1"], 3 * down + 10, "r1 to own the VIP")
            self.say(f"r1 is Master and holds {self.vip}")
            pinger = Pinger(lab.client.ns, self.vip, lab.workdir / "ping.log").start()
            try:
                wait_until(lambda: _replies_from(cap, r1.mac, 0.0), 5, "echo replies from r1")
                t_fail = self._break(lab, procs[0])
                self.say(f"{self.failure} r1 at {t_fail:.6f}")
                wait_until(lambda: "r2" in lab.owners(self.vip), down + 10, "r2 to own the VIP")
                wait_until(lambda: _replies_from(cap, r2.mac, t_fail), 10, "echo replies from r2")
            finally:
                ping = pinger.stop()
            events = cap.events()
            owners = lab.owners(self.vip)
        for p in procs:
            if p.running():
                p.sigterm()
        numbers = self._numbers(lab, events, t_fail, down)
        numbers |= {"pings_sent": ping.sent, "pings_lost": ping.lost,
                    "ping_max_gap_s": round(ping.max_gap_s, 4), "owners_after": owners}  # fmt: skip
        self._narrate(numbers)
        return numbers

    def _break(self, lab: Lab, master: RouterProcess) -> float:
        import time

        t = time.time()
        if self.failure == "kill9":
            return master.kill9()
        if self.failure == "sigterm":
            return master.sigterm()
        if self.failure == "linkdown":
            lab.link_down(master.node)
        else:  # a partition the master cannot see: its link stays up, its frames are dropped
            lab.loss(master.node, 100)
        return t

    def _numbers(self, lab: Lab, events: list[Event], t_fail: float, down: float) -> dict[str, Any]:
        r1, r2 = lab.routers
        vrid = self.spec.vrid
        adverts = [e for e in events if e.kind == "advert" and e.vrid == vrid]
        old = [e.t for e in adverts if e.src == str(r1.addr4.ip) and e.priority > 0]
        new = [e.t for e in adverts if e.src == str(r2.addr4.ip) and e.t > t_fail]
        garps = [e.t for e in events if e.kind == "arp" and e.src == self.vip
                 and e.src_mac == r2.mac and e.t > t_fail]  # fmt: skip
        if not old or not new:
            raise LabError(f"capture incomplete: {len(old)} adverts from r1, {len(new)} from r2")
        last_old, first_new = max(t for t in old if t <= new[0]), new[0]
        return {
            "impl": self.impl,
            "failure": self.failure,
            "version": self.spec.version,
            "advert_int_s": self.spec.advert_int_s,
            "master_down_interval_s": round(down, 4),
            "takeover_s": round(first_new - last_old, 4),
            "failure_to_first_advert_s": round(first_new - t_fail, 4),
            "first_advert_to_first_garp_s": round(garps[0] - first_new, 4) if garps else None,
            "failure_to_first_garp_s": round(garps[0] - t_fail, 4) if garps else None,
            "garps_seen": len(garps),
        }

    def _narrate(self, n: dict[str, Any]) -> None:
        self.say(f"takeover (last r1 advert -> first r2 advert): {n['takeover_s']:.3f} s "
                 f"(Master_Down_Interval {n['master_down_interval_s']:.3f} s)")  # fmt: skip
        self.say(f"{self.failure} -> first r2 advert: {n['failure_to_first_advert_s']:.3f} s")
        if n["failure_to_first_garp_s"] is not None:
            self.say(f"first r2 advert -> first gratuitous ARP: "
                     f"{n['first_advert_to_first_garp_s'] * 1000:.1f} ms "
                     f"({n['garps_seen']} GARPs seen)")  # fmt: skip
        self.say(f"pings: {n['pings_sent']} sent, {n['pings_lost']} lost, longest gap "
                 f"{n['ping_max_gap_s'] * 1000:.0f} ms")  # fmt: skip
        if n["owners_after"] != ["r2"]:
            self.say(f"VIP now on {', '.join(n['owners_after'])}: a killed keepalived leaves its "
                     "VIPs behind; the client follows r2's gratuitous ARP")  # fmt: skip


def _replies_from(cap: Capture, mac: str, since: float) -> bool:
    return any(e.kind == "echo_reply" and e.src_mac == mac and e.t > since for e in cap.events())


def leftovers() -> list[str]:
    """Lab namespaces (`vrl-<pid>-...`) whose creating process is gone."""
    out = json.loads(run(["ip", "-j", "netns", "list"]) or "[]")
    names = [n["name"] for n in out if n["name"].startswith("vrl-")]
    stale = []
    for name in names:
        pid = name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            stale.append(name)
    return stale


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
