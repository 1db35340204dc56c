"""Manual failover primitives (issue 6, vrrpctl): resign, takeover, base-priority override.

Literal times; two engines on a simulated segment where a scenario needs the other router.
VRRPv2, advert_int 1 s: Master_Down_Interval = 3 + (256 - priority) / 256 s.
"""

from __future__ import annotations

import math
from ipaddress import IPv4Address, IPv4Interface

import pytest

from vrrpd.config.model import Config, InstanceConfig, VipSpec
from vrrpd.core.actions import (
    Action,
    AddVips,
    Announce,
    DelVips,
    LogEvent,
    NotifyEvent,
    NotifyTarget,
    PriorityChanged,
    RunNotify,
    SendAdvert,
    State,
    StateChanged,
)
from vrrpd.core.emit import advert_for
from vrrpd.core.engine import Engine, ManualError
from vrrpd.core.inputs import LinkState
from vrrpd.proto.advert import Datagram
from vrrpd.proto.constants import VRRP_GROUP4
from vrrpd.proto.packet import encode

A_IP = IPv4Address("192.0.2.1")
B_IP = IPv4Address("192.0.2.2")
VIP = VipSpec(IPv4Interface("192.0.2.10/32"))


def cfg(priority: int = 100, **kw: object) -> InstanceConfig:
    return InstanceConfig(
        name="VI_1", vrid=51, interface="eth0", vips=(VIP,), priority=priority, **kw
    )  # type: ignore[arg-type]


def node(addr: IPv4Address, priority: int = 100, **kw: object) -> Engine:
    eng = Engine(Config(instances=(cfg(priority, **kw),)))
    eng.on_link(LinkState("eth0", 7, True, addr), 0.0)
    eng.start(0.0)
    return eng


def down(priority: int) -> float:
    return 3 + (256 - priority) / 256


def master_at(addr: IPv4Address = A_IP, priority: int = 100) -> Engine:
    eng = node(addr, priority)
    eng.on_timer(down(priority))
    assert eng.instances["VI_1"].state == State.MASTER
    return eng


def send(priority: int, src: IPv4Address = A_IP) -> SendAdvert:
    return SendAdvert("VI_1", "eth0", advert_for(cfg(), priority), src, (VRRP_GROUP4,), 255)


def deliver(actions: list[Action], to: Engine, now: float) -> list[Action]:
    """Feed every advert in `actions` to the other router, as the segment would."""
    out: list[Action] = []
    for a in actions:
        if isinstance(a, SendAdvert):
            data = encode(a.advert, a.src, VRRP_GROUP4)
            assert a.src is not None
            out += to.receive_datagram(Datagram(data, a.src, VRRP_GROUP4, 7, 255), now)
    return out


def master_entry(priority: int, reason: str, src: IPv4Address = A_IP) -> list[Action]:
    return [
        send(priority, src),
        StateChanged("VI_1", State.BACKUP, State.MASTER, reason),
        LogEvent("VI_1", "Entering MASTER STATE"),
        LogEvent("VI_1", "setting VIPs.", detail=True),
        AddVips("VI_1", "eth0", (VIP,)),
        Announce("VI_1", "eth0", (VIP.ip,), 5, 0.0),
        RunNotify(NotifyTarget.INSTANCE, "VI_1", NotifyEvent.MASTER, priority),
    ]


def test_resign_sends_priority_zero_goes_backup_and_holds_priority_one():
    eng = master_at()
    actions = eng.resign("VI_1", 10.0, 30.0, who="alice")
    assert actions == [
        LogEvent("VI_1", "resign requested by alice - holding priority 1 for 30s"),
        send(0),
        LogEvent("VI_1", "sent 0 priority", detail=True),
        StateChanged("VI_1", State.MASTER, State.BACKUP, "resign requested by alice"),
        LogEvent("VI_1", "Entering BACKUP STATE"),
        LogEvent("VI_1", "removing VIPs.", detail=True),
        DelVips("VI_1", "eth0", (VIP,)),
        RunNotify(NotifyTarget.INSTANCE, "VI_1", NotifyEvent.BACKUP, 100),
        PriorityChanged("VI_1", 100, 1),
        LogEvent("VI_1", "Changing effective priority from 100 to 1"),
    ]
    inst = eng.instances["VI_1"]
    assert inst.down_at == pytest.approx(10.0 + down(1), abs=1e-9)
    status = eng.status()[0]
    assert (status.manual, status.manual_until, status.effective_priority) == ("resign", 40.0, 1)


def test_resigned_node_takes_back_over_when_nobody_else_does():
    eng = master_at()
    eng.resign("VI_1", 10.0, None)
    at = 10.0 + down(1)
    actions = eng.on_timer(at)
    assert actions == [
        LogEvent("VI_1", "Receive advertisement timeout", detail=True),
        *master_entry(1, "master down timer expired"),
    ]
    # it keeps advertising (no VIP lost): the next advert in its slot, within an interval
    assert eng.next_deadline() == pytest.approx(math.floor(at) + 1.0)


def test_resign_hands_over_to_the_backup_which_is_not_preempted_back():
    a, b = master_at(A_IP, 100), node(B_IP, 90)
    b.receive_datagram(
        Datagram(encode(advert_for(cfg(), 100), A_IP, VRRP_GROUP4), A_IP, VRRP_GROUP4, 7, 255), 4.0
    )
    resign = a.resign("VI_1", 10.0, 20.0)
    assert deliver(resign, b, 10.0) == []  # priority 0: B's down timer is cut to Skew_Time
    skew_b = (256 - 90) / 256
    assert b.next_deadline() == pytest.approx(10.0 + skew_b, abs=1e-9)
    takeover = b.on_timer(10.0 + skew_b)
    assert master_entry(90, "master down timer expired", B_IP) == takeover[1:]
    # A, holding priority 1, accepts B's advert (90 >= 1): no preemption back.
    assert deliver(takeover, a, 10.7) == []
    assert a.instances["VI_1"].master_addr == B_IP
    assert a.instances["VI_1"].state == State.BACKUP
    for second in range(11, 30):  # B advertises every second for the rest of the hold
        assert deliver([send(90, B_IP)], a, second + 0.7) == []
    assert a.instances["VI_1"].state == State.BACKUP
    # The hold ends at 30 s: A's priority is 100 again and B's next advert is discarded.
    assert a.on_timer(30.0) == [
        LogEvent("VI_1", "resign hold expired"),
        PriorityChanged("VI_1", 1, 100),
        LogEvent("VI_1", "Changing effective priority from 1 to 100"),
    ]
    assert deliver([send(90, B_IP)], a, 30.5) == [
        LogEvent("VI_1", "received lower priority (90) advert from 192.0.2.2 - discarding")
    ]


def test_takeover_from_backup_raises_to_254_and_the_old_master_yields():
    a, b = master_at(A_IP, 200), node(B_IP, 100)
    actions = b.takeover("VI_1", 5.0, who="bob")
    assert actions == [
        LogEvent("VI_1", "takeover requested by bob"),
        PriorityChanged("VI_1", 100, 254),
        LogEvent("VI_1", "Changing effective priority from 100 to 254"),
        *master_entry(254, "takeover requested by bob", B_IP),
    ]
    yielded = deliver(actions, a, 5.0)
    assert yielded[0] == LogEvent(
        "VI_1", "Master received advert from 192.0.2.2 with higher priority 254, ours 200"
    )
    assert StateChanged("VI_1", State.MASTER, State.BACKUP, "higher priority advert") in yielded
    # A keeps preempting on, but 200 < 254: its adverts are not a threat.
    assert a.instances["VI_1"].state == State.BACKUP
    assert b.status()[0].manual == "takeover"


def test_takeover_while_master_sends_an_advert_at_once():
    eng = master_at(A_IP, 254)
    assert eng.takeover("VI_1", 7.25) == [
        LogEvent("VI_1", "takeover requested by control"),
        send(254),
    ]
    assert eng.instances["VI_1"].adver_at == pytest.approx(8.0)  # the next in its slot


def test_takeover_ends_a_resign_hold():
    eng = master_at()
    eng.resign("VI_1", 10.0, 60.0)
    actions = eng.takeover("VI_1", 12.0)
    assert actions[:3] == [
        LogEvent("VI_1", "takeover requested by control"),
        PriorityChanged("VI_1", 1, 254),
        LogEvent("VI_1", "Changing effective priority from 1 to 254"),
    ]
    assert eng.instances["VI_1"].manual_until is None
    assert eng.instances["VI_1"].state == State.MASTER


def test_owner_takeover_keeps_255():
    eng = node(A_IP, 255)
    assert eng.instances["VI_1"].state == State.MASTER
    eng.resign("VI_1", 5.0)
    assert eng.instances["VI_1"].effective_priority == 1
    actions = eng.takeover("VI_1", 6.0)
    assert PriorityChanged("VI_1", 1, 255) in actions
    assert eng.instances["VI_1"].state == State.MASTER


def test_manual_requests_in_fault_are_refused_with_the_reason():
    eng = node(A_IP)
    eng.set_fault("VI_1", "script:chk", "script chk failed", 1.0)
    with pytest.raises(
        ManualError, match=r"\(VI_1\) cannot take over in FAULT state: script chk failed"
    ):
        eng.takeover("VI_1", 2.0)
    with pytest.raises(ManualError, match=r"\(VI_1\) cannot resign in FAULT state"):
        eng.resign("VI_1", 2.0)


def test_bad_requests_are_refused():
    eng = node(A_IP)
    with pytest.raises(ManualError, match="no vrrp_instance named 'VI_9'"):
        eng.takeover("VI_9", 1.0)
    for bad in (0, 255, 300):
        with pytest.raises(ManualError, match=f"priority must be 1..254, not {bad}"):
            eng.override_priority("VI_1", bad, 1.0)
    with pytest.raises(ManualError, match="resign hold must be > 0 seconds"):
        eng.resign("VI_1", 1.0, 0)


def test_override_priority_and_clear():
    eng = master_at()
    assert eng.override_priority("VI_1", 150, 5.0, who="carol") == [
        LogEvent("VI_1", "base priority set to 150 by carol (configured 100)"),
        PriorityChanged("VI_1", 100, 150),
        LogEvent("VI_1", "Changing effective priority from 100 to 150"),
        send(150),
    ]
    eng.set_priority("VI_1", 6.0, delta=("script:chk", -20))
    assert eng.status()[0].effective_priority == 130  # trackers still apply on top
    eng.resign("VI_1", 7.0)
    assert eng.override_priority("VI_1", None, 8.0) == [
        LogEvent("VI_1", "base priority override cleared by control, back to 100"),
        PriorityChanged("VI_1", 1, 80),
        LogEvent("VI_1", "Changing effective priority from 1 to 80"),
    ]
    status = eng.status()[0]
    assert (status.base_priority, status.base_override, status.manual) == (100, None, None)


def test_override_on_backup_retimes_the_down_timer():
    eng = node(A_IP)
    eng.override_priority("VI_1", 200, 1.0)
    assert eng.next_deadline() == pytest.approx(down(200), abs=1e-9)
