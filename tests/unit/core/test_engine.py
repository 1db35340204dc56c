"""The engine's receive path: decode, route by (interface, family, VRID), check, then the FSM.

UNH-IOL VRRP 4.1-4.8: each invalid packet is dropped, counted under keepalived's name, and
leaves the instance's state and timers untouched.
"""

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

import pytest
from core_builders import make_cfg

from vrrpd.config.model import Auth, AuthType, Config, UnicastPeer, VipSpec
from vrrpd.core.actions import Dropped, LogEvent, SendAdvert, State
from vrrpd.core.engine import ADVERT_SLOT_SIZE, Engine
from vrrpd.core.inputs import LinkState
from vrrpd.errors import DropReason
from vrrpd.proto.advert import Advert, Datagram
from vrrpd.proto.constants import VRRP_GROUP4
from vrrpd.proto.packet import encode

PEER = IPv4Address("192.0.2.2")
OURS = IPv4Address("192.0.2.1")
VIP = IPv4Address("192.0.2.10")


def engine(**kw: object) -> Engine:
    eng = Engine(Config(instances=(make_cfg(**kw),)))
    eng.on_link(LinkState("eth0", 7, True, OURS), 0.0)
    eng.start(0.0)
    return eng


def dgram(advert: Advert, *, ttl: int = 255, dst=VRRP_GROUP4, ifindex: int = 7, **enc) -> Datagram:
    return Datagram(encode(advert, PEER, dst, **enc), PEER, dst, ifindex, ttl)


def bad_checksum() -> Datagram:
    data = bytes([0x21, 51, 150, 1, 0, 1, 0, 0]) + VIP.packed + bytes(8)
    return Datagram(data, PEER, VRRP_GROUP4, 7, 255)


def v2(priority: int = 150, vrid: int = 51, adver_int: int = 1, **kw: object) -> Advert:
    fields = {"auth_type": 0, "auth_data": b"", **kw}
    return Advert(2, vrid, priority, adver_int, (VIP,), **fields)  # type: ignore[arg-type]


def test_valid_advert_reaches_the_instance():
    eng = engine()
    assert eng.receive_datagram(dgram(v2()), 1.0) == []
    inst = eng.instances["VI_1"]
    assert inst.master_addr == PEER
    assert inst.stats.advert_rcvd == 1
    assert eng.next_deadline() == pytest.approx(1.0 + 3 + 156 / 256, abs=1e-9)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: dgram(v2(), ttl=254), DropReason.IP_TTL_ERR),
        (lambda: dgram(v2(adver_int=2)), DropReason.ADVERT_INTERVAL_ERR),
        (lambda: dgram(v2(auth_type=1, auth_data=b"secret")), DropReason.AUTHTYPE_MISMATCH),
        (lambda: Datagram(b"\x21\x33", PEER, VRRP_GROUP4, 7, 255), DropReason.PACKET_LEN_ERR),
        (bad_checksum, DropReason.CHECKSUM_ERR),
        (lambda: dgram(v2(vrid=52)), DropReason.UNKNOWN_VRID),
        (lambda: dgram(v2(), ifindex=8), DropReason.UNKNOWN_VRID),
    ],
)
def test_invalid_packets_are_dropped_counted_and_change_nothing(build, reason):
    eng = engine()
    inst = eng.instances["VI_1"]
    before = inst.down_at
    actions = eng.receive_datagram(build(), 1.0)
    assert len(actions) == 1
    assert isinstance(actions[0], Dropped)
    assert actions[0].reason == reason
    assert inst.down_at == before
    assert inst.master_addr is None
    counted = inst.stats.as_dict().get(reason.value, 0) + eng.unmatched.get(reason.value, 0)
    assert counted == 1


def test_pass_authentication_checked_in_constant_time_compare():
    eng = engine(auth=Auth(AuthType.PASS, b"secret"))
    good = v2(auth_type=1, auth_data=b"secret")
    bad = v2(auth_type=1, auth_data=b"guess")
    assert eng.receive_datagram(dgram(good), 1.0) == []
    [drop] = eng.receive_datagram(dgram(bad), 1.5)
    assert isinstance(drop, Dropped)
    assert drop.reason == DropReason.AUTH_FAILURE


def test_v3_interval_mismatch_is_accepted_counted_and_adopted():
    eng = engine(version=3, advert_int_cs=100)
    advert = Advert(3, 51, 150, 50, (VIP,))
    actions = eng.receive_datagram(dgram(advert), 1.0)
    assert [type(a) for a in actions] == [LogEvent]
    inst = eng.instances["VI_1"]
    assert inst.stats.advert_interval_err == 1
    assert inst.master_adver_int_cs == 50


def test_address_list_mismatch_is_logged_but_accepted():
    """keepalived 2.3.3+: rejecting it was the classic dual-master trap (#1603)."""
    eng = engine()
    other = Advert(2, 51, 150, 1, (IPv4Address("192.0.2.99"),), 0, b"")
    eng.receive_datagram(dgram(other), 1.0)
    inst = eng.instances["VI_1"]
    assert inst.stats.addr_list_err == 1
    assert inst.master_addr == PEER


def test_unicast_instances_sharing_a_vrid_are_told_apart_by_peer():
    a = make_cfg(name="A", unicast_peers=(UnicastPeer(IPv4Address("192.0.2.3")),))
    b = replace(a, name="B", unicast_peers=(UnicastPeer(PEER),))
    eng = Engine(Config(instances=(a, b)))
    eng.on_link(LinkState("eth0", 7, True, OURS), 0.0)
    eng.start(0.0)
    eng.receive_datagram(dgram(v2(), dst=OURS), 1.0)
    assert eng.instances["B"].master_addr == PEER
    assert eng.instances["A"].master_addr is None


def test_missing_interface_starts_in_fault_and_link_events_move_it():
    eng = Engine(Config(instances=(make_cfg(interface="eth9"),)))
    eng.start(0.0)
    inst = eng.instances["VI_1"]
    assert inst.state == State.FAULT
    assert "eth9 does not exist" in inst.last_reason
    eng.on_link(LinkState("eth9", 9, True, OURS), 1.0)
    assert inst.state == State.BACKUP
    eng.on_link(LinkState("eth9", 9, False, OURS), 2.0)
    assert inst.state == State.FAULT


def test_timer_only_touches_due_instances_and_reports_one_deadline():
    cfgs = tuple(
        make_cfg(name=f"VI_{i}", vrid=i, priority=100 + i,
                 vips=(VipSpec(IPv4Interface(f"192.0.2.{i}/32")),))
        for i in range(1, 51)
    )  # fmt: skip
    eng = Engine(Config(instances=cfgs))
    eng.on_link(LinkState("eth0", 7, True, OURS), 0.0)
    eng.start(0.0)
    first = eng.next_deadline()
    assert first == pytest.approx(3 + (256 - 150) / 256, abs=1e-9)  # highest priority first
    eng.on_timer(first)
    masters = [i for i in eng.instances.values() if i.state == State.MASTER]
    assert [m.name for m in masters] == ["VI_50"]


def test_shutdown_releases_every_master_before_any_stop_notify():
    eng = engine(priority=255)
    actions = eng.shutdown(5.0)
    kinds = [type(a).__name__ for a in actions]
    assert kinds == ["SendAdvert", "LogEvent", "LogEvent", "DelVips", "StateChanged", "RunNotify"]
    assert actions[0].advert.priority == 0
    assert eng.next_deadline() is None


def test_masters_share_an_advert_slot_and_a_down_timer_is_never_brought_forward():
    """A and B (1 s) share one slot: B, MASTER at 0.005, next advertises at 1.0 with A (early
    once, when it joins) and stays with it; C's down timer (due 1.002) fires at its own time."""
    vip = VipSpec(IPv4Interface("192.0.2.20/32"))
    cfgs = (
        make_cfg(name="A", vrid=1, priority=255, version=3),
        make_cfg(name="B", vrid=2, priority=255, version=3, interface="eth1", vips=(vip,)),
        make_cfg(name="C", vrid=3, priority=100, version=3, interface="eth2", advert_int_cs=25),
    )  # fmt: skip
    eng = Engine(Config(instances=cfgs))
    eng.on_link(LinkState("eth0", 7, True, OURS), 0.0)
    eng.start(0.0)
    eng.on_link(LinkState("eth1", 8, True, IPv4Address("192.0.2.3")), 0.005)
    eng.on_link(LinkState("eth2", 9, True, IPv4Address("192.0.2.4")), 0.1)
    states = {n: i.state for n, i in eng.instances.items()}
    assert states == {"A": State.MASTER, "B": State.MASTER, "C": State.BACKUP}
    c_down = 0.1 + 3 * 0.25 + (256 - 100) / 256 * 0.25  # 1.002...
    assert eng.next_deadline() == 1.0
    actions = eng.on_timer(1.0)
    assert [a.instance for a in actions if isinstance(a, SendAdvert)] == ["A", "B"]
    assert eng.instances["C"].state == State.BACKUP
    assert eng.next_deadline() == pytest.approx(c_down, abs=1e-9)
    eng.on_timer(c_down)
    assert eng.instances["C"].state == State.MASTER
    sends = [a.instance for a in eng.on_timer(2.0) if isinstance(a, SendAdvert)]
    assert {"A", "B"} <= set(sends)
    assert eng.instances["B"].adver_at == eng.instances["A"].adver_at == 3.0


def two_owners(b_up_at: float) -> Engine:
    """Owners A (eth0, up at 0) and B (eth1, up at `b_up_at`), VRRPv3 at 1 s: MASTER at once."""
    cfgs = (
        make_cfg(name="A", vrid=1, priority=255, version=3),
        make_cfg(name="B", vrid=2, priority=255, version=3, interface="eth1",
                 vips=(VipSpec(IPv4Interface("192.0.2.20/32")),)),
    )  # fmt: skip
    eng = Engine(Config(instances=cfgs))
    eng.on_link(LinkState("eth0", 7, True, OURS), 0.0)
    eng.start(0.0)
    eng.on_link(LinkState("eth1", 8, True, IPv4Address("192.0.2.3")), b_up_at)
    return eng


def test_an_advert_joining_its_slot_is_early_once_and_never_later_than_an_interval():
    """B enters MASTER at 0.3 (its first advert then); its second goes at 1.0 with A's, 0.7 s
    later, and from then on every second: no gap between B's adverts exceeds the interval."""
    eng = two_owners(0.3)
    sent_at = {"A": [0.0], "B": [0.3]}
    for t in (1.0, 2.0, 3.0):
        assert eng.next_deadline() == t
        for a in eng.on_timer(t):
            if isinstance(a, SendAdvert):
                sent_at[a.instance].append(t)
    assert sent_at == {"A": [0.0, 1.0, 2.0, 3.0], "B": [0.3, 1.0, 2.0, 3.0]}


def test_advert_slots_hold_at_most_slot_size_instances_filled_evenly():
    """SLOT_SIZE + 2 instances at 1 s: two slots, phases 0 and 0.5, filled half and half in
    configuration order; a 100 ms instance is on its own grid."""
    n = ADVERT_SLOT_SIZE + 2
    cfgs = [make_cfg(name=f"I{v}", vrid=v, version=3) for v in range(1, n + 1)]
    cfgs.append(make_cfg(name="F", vrid=250, version=3, advert_int_cs=10))
    eng = Engine(Config(instances=tuple(cfgs)))
    slots = [eng.instances[c.name].advert_slot for c in cfgs]
    assert slots[: n // 2] == [(1.0, 0.0)] * (n // 2)
    assert slots[n // 2 : n] == [(1.0, 0.5)] * (n // 2)
    assert slots[-1] == (0.1, 0.0)


def test_a_late_wake_up_keeps_the_slot_grid():
    """Woken 0.7 ms late for the 1.0 slot: A and B send, and both next adverts are at 2.0,
    not 2.0007: the grid neither drifts nor splits."""
    eng = two_owners(0.005)
    sends = [a.instance for a in eng.on_timer(1.0007) if isinstance(a, SendAdvert)]
    assert sends == ["A", "B"]
    assert eng.instances["A"].adver_at == eng.instances["B"].adver_at == 2.0
