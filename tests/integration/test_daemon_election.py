"""Election, failover and preemption between two real vrrpd daemons in namespaces.

r1 (priority 150) and r2 (priority 100) read keepalived.conf files built by `vrrp_conf`. VRRPv3
with 0.1 s adverts keeps Master_Down_Interval near 0.35 s. VIP ownership is read from the kernel
(`ip -j addr`), states from the daemons' keepalived-style log lines, timings from kernel
timestamps of frames captured on each router's bridge port (so unicast adverts are seen too), and
after each takeover the client pings the VIP and asks who has it (ARP / neighbour solicitation):
only the new master's MAC may answer. Waits poll with deadlines; a "stays BACKUP" claim is
checked over a counted number of adverts.

test_vrrpd_daemon.py already covers kill -9 failover and preemption (v3 IPv4, IPv6, unicast) and
SIGTERM and link down for IPv4 multicast; here: link down and SIGTERM for IPv6 and unicast,
nopreempt, preempt_delay, the equal-priority tie-break, the priority-255 owner and the v3 interval
adoption. `use_vmac` failover is in test_vrrpd_vmac.py, packet loss in test_lab_loss.py.
"""

from __future__ import annotations

import time

import pytest
from conftest import wait_until
from vrrplab.capture import Capture, Event
from vrrplab.procs import RouterProcess, VrrpOptions, launch, launch_all
from vrrplab.topo import Lab, Node

V4 = VrrpOptions()
MODES = {
    "ipv4-unicast": VrrpOptions(unicast=True),
    "ipv6": VrrpOptions(vips=("2001:db8::100/64",)),
}
BAD_LOG = ("Traceback", "dropped packet", "nvalid", "checksum")


def vip_of(opts: VrrpOptions) -> str:
    return opts.vips[0].split("/")[0]


def settle(
    lab: Lab, vip: str, master: RouterProcess, backup: RouterProcess, reach_s: float = 5
) -> None:
    """`master` holds the VIP alone and logs MASTER, `backup` logs BACKUP, the client pings."""
    name = master.node.name
    wait_until(lambda: lab.owners(vip) == [name], 10, f"{name} alone to hold {vip}")
    wait_until(lambda: master.state() == "MASTER", 5, f"{name} to log MASTER")
    wait_until(lambda: backup.state() == "BACKUP", 5, f"{backup.node.name} to log BACKUP")
    wait_until(lambda: lab.client_reaches(vip), reach_s, f"the client to reach {vip} on {name}")


def r1_then_r2(
    lab: Lab, opts1: VrrpOptions, opts2: VrrpOptions | None = None
) -> tuple[RouterProcess, RouterProcess]:
    """r1 (150) elected alone first, then r2 (100) started and settled as BACKUP: the order
    nopreempt, preempt_delay and a slower advert interval on r1 need. A failure here leaves
    the daemons to the lab's teardown, which kills whatever runs in its namespaces."""
    (r1, r2), vip = lab.routers, vip_of(opts1)
    p1 = launch(lab, r1, 150, opts1)
    wait_until(lambda: lab.owners(vip) == ["r1"], 10, "r1 to become MASTER first")
    p2 = launch(lab, r2, 100, opts2 or opts1)
    settle(lab, vip, p1, p2)
    return p1, p2


def answers(lab: Lab, vip: str, node: Node) -> None:
    """The client's ARP request (IPv6: NS) for the VIP is answered by `node`'s MAC alone."""
    macs = wait_until(lambda: lab.answering_macs(vip), 5, f"an answer for {vip}")
    assert macs == [node.mac], f"only {node.name} ({node.mac}) should answer for {vip}"


def port_capture(lab: Lab, node: Node) -> Capture:
    """Everything `node` sends, seen where it enters the bridge (multicast and unicast)."""
    return Capture(lab.bridge_ns, node.port)


def adverts(cap: Capture, after: float = 0.0) -> list[Event]:
    return [e for e in cap.events() if e.kind == "advert" and e.t > after]


def wait_adverts(cap: Capture, count: int, after: float, what: str, timeout: float = 10) -> None:
    wait_until(lambda: len(adverts(cap, after)) >= count, timeout, f"{count} adverts {what}")


def assert_clean(*procs: RouterProcess) -> None:
    for p in procs:
        bad = [ln for ln in p.output().splitlines() if any(m in ln for m in BAD_LOG)]
        assert not bad, f"{p.node.name} logged: {bad[:3]}"


def stop_all(*procs: RouterProcess) -> None:
    for p in procs:
        if p.running():
            p.sigterm()


@pytest.mark.parametrize("how", ["linkdown", "sigterm"])
@pytest.mark.parametrize("mode", list(MODES))
def test_failover_and_preemption(lab: Lab, mode: str, how: str) -> None:
    """Higher priority wins; the backup takes over on link down / SIGTERM; r1 preempts back."""
    opts, (r1, r2) = MODES[mode], lab.routers
    vip = vip_of(opts)
    p1, p2 = launch_all(lab, [(r1, 150, opts), (r2, 100, opts)])
    try:
        # Should r2 win the start-up race for a moment, r1 alone holding the VIP means r2 has
        # heard r1 and stepped back already.
        settle(lab, vip, p1, p2)
        with port_capture(lab, r1) as c1, port_capture(lab, r2) as c2:
            wait_adverts(c1, 3, 0, "from r1 on the wire")
            if opts.family == 6:
                assert all(e.src.startswith("fe80:") for e in adverts(c1)), adverts(c1)
            assert not adverts(c2), "the BACKUP must not advertise"
            mark1, mark2 = p1.mark(), p2.mark()
            if how == "linkdown":
                lab.link_down(r1)
            else:
                p1.sigterm()
            wait_until(lambda: lab.owners(vip) == ["r2"], 10, "r2 alone to hold the VIP")
            assert p2.states(mark2) == ["MASTER"]
            wait_until(lambda: lab.client_reaches(vip), 5, "the client to reach the VIP on r2")
            answers(lab, vip, r2)
            if how == "linkdown":
                wait_until(lambda: "FAULT" in p1.states(mark1), 5, "r1 to log FAULT")
                assert p1.running()
            else:
                check_priority_zero_takeover(c1, c2, opts)
                assert "removing VIPs" in p1.output(mark1)
        mark2 = p2.mark()
        if how == "linkdown":
            lab.link_up(r1)
        else:
            p1.start()
            p1.wait_started()
        settle(lab, vip, p1, p2)  # preemption: r1 (150) takes the VIP back from r2 (100)
        assert p2.states(mark2) == ["BACKUP"]
        answers(lab, vip, r1)
        assert_clean(p1, p2)
    finally:
        stop_all(p1, p2)


def check_priority_zero_takeover(c1: Capture, c2: Capture, opts: VrrpOptions) -> None:
    """RFC 5798 6.4.2: a Backup hearing priority 0 waits Skew_Time, not Master_Down_Interval.

    The Backup's Master_Down timer was last reset by r1's last normal advert; without the
    priority-0 path it cannot advertise before that advert + Master_Down_Interval.
    """
    wait_adverts(c2, 1, 0, "from r2 after the takeover")
    zero = [e for e in adverts(c1) if e.priority == 0]
    assert zero, "r1 sent no priority-0 advert on SIGTERM"
    last_normal = max(e.t for e in adverts(c1) if e.priority > 0 and e.t <= zero[0].t)
    first_r2 = min(e.t for e in adverts(c2))
    master_down = opts.master_down_s(100)
    print(
        f"priority 0 -> r2 advert {first_r2 - zero[0].t:.3f} s "
        f"(skew {opts.skew_s(100):.3f} s); last r1 advert -> r2 advert "
        f"{first_r2 - last_normal:.3f} s (Master_Down_Interval {master_down:.3f} s)"
    )
    assert first_r2 > zero[0].t
    assert first_r2 - last_normal < master_down


def test_nopreempt_higher_priority_stays_backup_after_return(lab: Lab) -> None:
    opts, r2 = VrrpOptions(nopreempt=True), lab.routers[1]
    vip = vip_of(opts)
    p1, p2 = r1_then_r2(lab, opts)
    try:
        p1.kill9()
        wait_until(lambda: "r2" in lab.owners(vip), 10, "r2 to take the VIP")
        wait_until(lambda: p2.state() == "MASTER", 5, "r2 to log MASTER")
        mark1 = p1.mark()
        with port_capture(lab, r2) as c2:
            p1.start()
            p1.wait_started()
            wait_until(lambda: p1.states(mark1) == ["BACKUP"], 5, "r1 to start in BACKUP")
            since = time.time()
            # Ten adverts span about three of r1's Master_Down_Intervals: time enough to preempt.
            wait_adverts(c2, 10, since, "from r2 while r1 (nopreempt) listens")
        assert p1.states(mark1) == ["BACKUP"], "nopreempt r1 took the VIP back"
        assert lab.owners(vip) == ["r2"]
        assert p2.state() == "MASTER"
        assert_clean(p1, p2)
    finally:
        stop_all(p1, p2)


def test_preempt_delay_holds_off_the_returning_higher_priority_router(lab: Lab) -> None:
    """keepalived `preempt_delay`: r1 (150) back after a clean stop hears r2 (100) as MASTER and
    keeps accepting it for the delay; only then (plus a Master_Down_Interval) does it preempt.

    The window cannot open before r1 wrote its pid file (it has no socket yet), so r1's first
    advert minus that moment is at least the delay: a bound that only errs on the safe side.
    """
    (r1, r2), delay = lab.routers, 2.0
    opts1 = VrrpOptions(extra_instance=(f"preempt_delay {delay:g}",))
    vip = vip_of(V4)
    p1, p2 = r1_then_r2(lab, opts1, V4)
    try:
        p1.sigterm()
        wait_until(lambda: lab.owners(vip) == ["r2"], 5, "r2 to take over from stopped r1")
        answers(lab, vip, r2)
        mark1 = p1.mark()
        with port_capture(lab, r1) as c1:
            p1.start()
            p1.wait_started()
            started = p1.started_at()
            wait_until(lambda: lab.owners(vip) == ["r1"], delay + 10, "r1 to preempt at last")
            wait_adverts(c1, 1, started, "from r1 as MASTER")
            first = min(e.t for e in adverts(c1, started))
        print(f"r1 started -> its first advert {first - started:.3f} s (preempt_delay {delay} s)")
        assert first - started >= delay, "r1 preempted before its preempt_delay"
        assert p1.states(mark1) == ["BACKUP", "MASTER"]
        answers(lab, vip, r1)
        assert_clean(p1, p2)
    finally:
        stop_all(p1, p2)


def test_equal_priority_lower_primary_address_yields(lab: Lab) -> None:
    """RFC 5798 6.4.3: a MASTER hearing an equal-priority advert from a higher primary address
    goes to BACKUP; the other MASTER discards the lower address's adverts and stays.

    Both routers become MASTER at once while neither's frames reach the LAN (100% loss at their
    bridge ports: their links stay up); then the loss is cleared. 192.0.2.11 < 192.0.2.12.
    """
    opts, (r1, r2) = V4, lab.routers
    vip = vip_of(opts)
    for r in (r1, r2):
        lab.loss(r, 100)
    p1, p2 = launch_all(lab, [(r1, 100, opts), (r2, 100, opts)])
    try:
        wait_until(lambda: lab.owners(vip) == ["r1", "r2"], 10, "both to become MASTER alone")
        wait_until(lambda: p1.state() == p2.state() == "MASTER", 5, "both to log MASTER")
        mark1, mark2 = p1.mark(), p2.mark()
        with port_capture(lab, r2) as c2:
            for r in (r1, r2):
                lab.clear_loss(r)
            healed = time.time()
            wait_until(lambda: lab.owners(vip) == ["r2"], 10, "r1 to yield the VIP to r2")
            wait_adverts(c2, 10, healed, "from r2 once both hear each other")
        assert p1.states(mark1) == ["BACKUP"]
        assert p2.states(mark2) == [], "r2 (the higher address) left MASTER"
        assert lab.owners(vip) == ["r2"]
        wait_until(lambda: lab.client_reaches(vip), 5, "the client to reach the VIP on r2")
        answers(lab, vip, r2)
        assert_clean(p1, p2)
    finally:
        stop_all(p1, p2)


# keepalived 2.2.7 with `state MASTER` and priority 255 logs no BACKUP line (nor runs a BACKUP
# notify): "Receive advertisement timeout", then "Entering MASTER STATE". vrrpd's Instance.start()
# enters BACKUP (init) first and goes on to MASTER at once: the timing is right, the log is not.


def test_priority_255_owner_is_master_at_once(lab: Lab) -> None:
    """RFC 5798 6.4.1: the address owner (priority 255) goes straight from Initialize to MASTER,
    without the Master_Down_Interval a Backup waits first (3.0 s at 1 s adverts). Measured from
    the owner's pid file (written before its socket exists), so process start-up counts against
    it: the bound is generous, but a Backup-first start cannot meet it.
    """
    opts, r1 = VrrpOptions(advert_int_s=1.0, state="MASTER"), lab.routers[0]
    vip = vip_of(opts)
    with port_capture(lab, r1) as c1:
        p1 = launch(lab, r1, 255, opts)
        try:
            started = p1.started_at()
            wait_until(lambda: lab.owners(vip) == ["r1"], 10, "r1 to hold the VIP")
            wait_adverts(c1, 1, started, "from r1")
            first = min(e.t for e in adverts(c1, started))
            priorities = {e.priority for e in adverts(c1, started)}
            wait_until(lambda: lab.client_reaches(vip), 5, "the client to reach the VIP on r1")
            answers(lab, vip, r1)
        finally:
            stop_all(p1)
    master_down = opts.master_down_s(255)
    print(f"owner: started -> first advert {first - started:.3f} s (MDI {master_down:.3f} s)")
    assert first - started < master_down
    assert priorities == {255}
    assert_clean(p1)
    assert p1.states() == ["MASTER"]
    assert "Entering BACKUP STATE" not in p1.output()


def test_v3_backup_adopts_the_master_interval(lab: Lab) -> None:
    """RFC 5798 6.4.2: the Backup sets Master_Adver_Interval from the adverts it hears.

    r2's own 0.1 s interval would give a Master_Down_Interval of 0.36 s, shorter than r1's 0.5 s
    advert gap: without adoption r2 would take over between two adverts and, after a kill,
    would advertise 0.36 s after r1's last advert instead of 3 x 0.5 s + skew.
    """
    (r1, r2) = lab.routers
    slow, fast = VrrpOptions(advert_int_s=0.5), VrrpOptions(advert_int_s=0.1)
    vip = vip_of(slow)
    p1, p2 = r1_then_r2(lab, slow, fast)
    try:
        # Until r2 first hears r1 it runs its own 0.36 s timer and may win a start-up race
        # against r1's 0.5 s adverts (MASTER, then BACKUP again): the claim starts at adoption.
        # When r2 wins it, its gratuitous ARPs can reach the client after r1's answer to its
        # lower-priority advert; r1's second set (garp_lower_prio_delay, 5 s by default) puts
        # the client right, hence 10 s for the client to reach r1 (CI simulation: 5 s failed).
        wait_until(lambda: "adopting it" in p2.output(), 5, "r2 to adopt r1's 0.5 s interval")
        settle(lab, vip, p1, p2, reach_s=10)
        mark2 = p2.mark()
        with port_capture(lab, r1) as c1, port_capture(lab, r2) as c2:
            wait_adverts(c1, 3, time.time(), "from r1 every 0.5 s")
            assert p2.states(mark2) == [], "r2 left BACKUP between r1's 0.5 s adverts"
            assert lab.owners(vip) == ["r1"]
            p1.kill9()
            wait_until(lambda: "r2" in lab.owners(vip), 10, "r2 to take over")
            wait_adverts(c2, 1, 0, "from r2")
            gap = min(e.t for e in adverts(c2)) - max(e.t for e in adverts(c1))
        print(f"last r1 advert -> first r2 advert {gap:.3f} s")
        assert gap >= 3 * slow.advert_int_s
        wait_until(lambda: lab.client_reaches(vip), 5, "the client to reach the VIP on r2")
        assert_clean(p1, p2)
    finally:
        stop_all(p1, p2)
