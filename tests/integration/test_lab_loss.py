"""Packet loss injected by the lab, against two real vrrpd daemons.

`Lab.loss(node, percent)` drops that share of the frames a router sends where they enter the
bridge (an nftables `netdev` ingress rule on its bridge port, `numgen random`, with counters);
the router's link stays up and it still hears the LAN. At 100% that is a partition the router
cannot see: r2 (100) stops hearing r1 (150) and takes over while r1 stays MASTER. At 30% the
outcome is chance, so only what is certain is asserted: frames were dropped, nothing crashed,
and once the loss is cleared r1 alone holds the VIP again.
"""

from __future__ import annotations

import time

import pytest
from conftest import wait_until
from vrrplab.capture import Capture
from vrrplab.netns import LabError
from vrrplab.procs import RouterProcess, VrrpOptions, launch_all
from vrrplab.topo import Lab

VIP = "192.0.2.100"
OPTS = VrrpOptions()  # VRRPv3, 0.1 s adverts


def start_pair(lab: Lab) -> tuple[RouterProcess, RouterProcess]:
    r1, r2 = lab.routers
    p1, p2 = launch_all(lab, [(r1, 150, OPTS), (r2, 100, OPTS)])
    settled(lab, p1, p2)
    wait_until(lambda: lab.client_reaches(VIP), 5, "the client to reach the VIP on r1")
    return p1, p2


def settled(lab: Lab, p1: RouterProcess, p2: RouterProcess) -> None:
    """r1 alone holds the VIP and logs MASTER, r2 logs BACKUP, only r1 answers ARP for the VIP.

    Not a ping: after a split brain the client's neighbour entry may still name r2's MAC, and
    whether r1's lower-priority GARPs got through to fix it before the loss ended is chance.
    """
    wait_until(lambda: lab.owners(VIP) == ["r1"], 10, "r1 alone to hold the VIP")
    wait_until(lambda: p1.state() == "MASTER" and p2.state() == "BACKUP", 5, "r1 MASTER, r2 BACKUP")
    assert lab.answering_macs(VIP) == [p1.node.mac]


def stop(*procs: RouterProcess) -> None:
    for p in procs:
        if p.running():
            p.sigterm()


def assert_alive_and_clean(*procs: RouterProcess) -> None:
    for p in procs:
        assert p.running(), f"{p.node.name} exited:\n{p.output()[-2000:]}"
        assert "Traceback" not in p.output()


def test_full_loss_from_the_master_is_a_partition_it_cannot_see(lab: Lab) -> None:
    r1, r2 = lab.routers
    p1, p2 = start_pair(lab)
    try:
        mark1, mark2 = p1.mark(), p2.mark()
        lab.loss(r1, 100)
        wait_until(lambda: p2.states(mark2) == ["MASTER"], 5, "r2 to stop hearing r1 and take over")
        # r1 still hears r2's lower-priority adverts, so it stays MASTER: both hold the VIP,
        # and only r2's answers reach the client.
        wait_until(lambda: lab.owners(VIP) == ["r1", "r2"], 5, "both routers to hold the VIP")
        wait_until(lambda: lab.client_reaches(VIP), 5, "the client to reach the VIP on r2")
        assert lab.answering_macs(VIP) == [r2.mac]
        assert p1.states(mark1) == []
        seen, dropped = lab.loss_counts(r1)
        assert seen == dropped > 0, (seen, dropped)

        lab.clear_loss(r1)
        assert lab.loss_counts(r1) == (0, 0)
        settled(lab, p1, p2)  # r2 hears r1 (150) again and steps back
        assert p2.states(mark2) == ["MASTER", "BACKUP"]
        assert p1.states(mark1) == []
        assert_alive_and_clean(p1, p2)
    finally:
        stop(p1, p2)


def test_random_loss_on_the_master_leaves_one_master_once_cleared(lab: Lab) -> None:
    r1 = lab.routers[0]
    p1, p2 = start_pair(lab)
    try:
        with pytest.raises(LabError):
            lab.loss(r1, 101)
        mark2 = p2.mark()
        lab.loss(r1, 30)

        def some_dropped_some_passed() -> bool:
            seen, dropped = lab.loss_counts(r1)
            return dropped >= 5 and seen - dropped >= 5

        wait_until(some_dropped_some_passed, 15, "30% loss to drop and pass frames from r1")
        seen, dropped = lab.loss_counts(r1)
        # Whether three adverts in a row were lost (and r2 took over for a while) is chance.
        print(f"r1 sent {seen} frames, {dropped} dropped; r2 went {p2.states(mark2) or 'nowhere'}")
        lab.clear_loss(r1)
        settled(lab, p1, p2)
        mark2 = p2.mark()
        with Capture(lab.bridge_ns, r1.port) as cap:
            since = time.time()
            wait_until(
                lambda: sum(e.kind == "advert" and e.t > since for e in cap.events()) >= 10,
                5,
                "ten adverts from r1 after the loss is cleared",
            )
        assert lab.owners(VIP) == ["r1"]
        assert p2.states(mark2) == [], "r2 left BACKUP with no loss left"
        assert_alive_and_clean(p1, p2)
    finally:
        stop(p1, p2)
