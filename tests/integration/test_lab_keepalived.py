"""The lab with two real keepalived routers: election, kill -9 of the Master, takeover, pings.

keepalived (Debian 2.2.7) is the reference peer; this also proves the lab itself before vrrpd's
daemon runs in it. VRRPv3 with 0.1 s adverts keeps the run short (Master_Down about 0.33 s).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import wait_until
from vrrplab.capture import Capture
from vrrplab.procs import InstanceSpec, RouterProcess, keepalived_conf

pytestmark = pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived missing")

SPEC = InstanceSpec(advert_int_s=0.1, version=3)
VIP = "192.0.2.100"


def ping_once(lab) -> bool:
    argv = ["ip", "netns", "exec", lab.client.ns, "ping", "-c", "1", "-W", "1", VIP]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def test_keepalived_failover_after_kill9(lab):
    r1, r2 = lab.routers
    procs = [RouterProcess(node, "keepalived", keepalived_conf(node, SPEC, prio), lab.workdir)
             for node, prio in ((r1, 150), (r2, 100))]  # fmt: skip
    with Capture(lab.client.ns) as cap:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_started()
        wait_until(lambda: lab.owners(VIP) == ["r1"], 10, "r1 (priority 150) to own the VIP")
        assert "(VI_1) Entering MASTER STATE" in procs[0].output()
        assert ping_once(lab)

        procs[0].kill9()
        assert not procs[0].running()
        wait_until(lambda: "r2" in lab.owners(VIP), 10, "r2 to take the VIP")
        wait_until(lambda: "(VI_1) Entering MASTER STATE" in procs[1].output(), 5, "r2 log line")

        def garp_from_r2() -> bool:
            return any(e.kind == "arp" and e.src == VIP and e.src_mac == r2.mac
                       for e in cap.events())  # fmt: skip

        wait_until(garp_from_r2, 5, "a gratuitous ARP from r2")
        wait_until(lambda: ping_once(lab), 5, "the client to reach the VIP through r2")
    neigh = subprocess.run(["ip", "-n", lab.client.ns, "neigh", "show", VIP],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert r2.mac in neigh
    procs[1].sigterm()
    wait_until(lambda: lab.owners(VIP) == ["r1"], 5, "r2's VIP removed on SIGTERM (r1's stays)")
