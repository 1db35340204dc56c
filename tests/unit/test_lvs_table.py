"""runtime.lvs_table: the IPVS table vrrpd wants, from config and checker verdicts (pure).

Scenarios follow keepalived's ipwrapper.c rules: removal or weight 0 (inhibit_on_failure) on
failure, quorum with hysteresis, the sorry server while the quorum is down, groups, reload.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

from vrrpd.check import RsChange
from vrrpd.cli import parse_args, subsystems
from vrrpd.config.lvsmodel import (
    Forwarding,
    LvsMethod,
    LvsProtocol,
    RealServerSpec,
    SorryServerSpec,
    VirtualServerGroupSpec,
    VirtualServerSpec,
    VsgEntry,
)
from vrrpd.config.model import Config, FifoSpec, GlobalDefs, InstanceConfig
from vrrpd.io.ipvs import SVC_F_ONEPACKET, SVC_F_SCHED2, Dest, Forward, ServiceKey, TunType
from vrrpd.runtime.lvs_table import LvsTable

RS1 = RealServerSpec(ip_address("192.0.2.21"), 80, weight=2)
RS2 = RealServerSpec(ip_address("192.0.2.22"), 80, weight=1, inhibit_on_failure=True)
RS3 = RealServerSpec(ip_address("192.0.2.23"), 0, forwarding=Forwarding(LvsMethod.DR))
SORRY = SorryServerSpec(ip_address("192.0.2.29"), 80)
VS = VirtualServerSpec(
    address=ip_address("192.0.2.10"), port=80, scheduler="rr", real_servers=(RS1, RS2, RS3)
)
KEY = ServiceKey.vip("192.0.2.10", 80)


def table(*vss: VirtualServerSpec, alive: dict[str, bool] | None = None, **kw) -> LvsTable:
    alive = alive or {}
    states = [
        RsChange(vs, rs, alive.get(str(rs.address), True), rs.weight)
        for vs in vss
        for rs in vs.real_servers
    ]
    return LvsTable(Config(virtual_servers=vss, **kw), states)


def change(vs: VirtualServerSpec, rs: RealServerSpec, up: bool, weight: int | None = None):
    return RsChange(vs, rs, up, rs.weight if weight is None else weight)


def dests(t: LvsTable, key: ServiceKey = KEY) -> dict[str, int]:
    (svc,) = [s for s in t.services() if s.key == key]
    return {f"{d.addr}:{d.port}": d.weight for d in svc.dests}


def test_every_real_server_is_a_destination_with_its_method_and_port() -> None:
    t = table(VS)
    (svc,) = t.services()
    assert svc.key == KEY and svc.scheduler == "rr" and svc.timeout_s == 0
    by_addr = {d.addr: d for d in svc.dests}
    assert by_addr["192.0.2.21"] == Dest("192.0.2.21", 80, 2, Forward.NAT)
    assert by_addr["192.0.2.23"] == Dest("192.0.2.23", 80, 1, Forward.DR)  # port-less: VS port
    assert t.start() == []


def test_failure_removes_or_inhibits_and_recovery_restores() -> None:
    t = table(VS)
    assert t.update(change(VS, RS1, False)) is None  # quorum 1 is still met
    t.update(change(VS, RS2, False))
    assert dests(t) == {"192.0.2.22:80": 0, "192.0.2.23:80": 1}
    t.update(change(VS, RS1, True))
    t.update(change(VS, RS2, True))
    t.update(change(VS, RS3, True, weight=7))  # misc_dynamic
    assert dests(t) == {"192.0.2.21:80": 2, "192.0.2.22:80": 1, "192.0.2.23:80": 7}


def test_quorum_loss_brings_the_sorry_server_and_regain_removes_it() -> None:
    vs = replace(VS, quorum=3, hysteresis=1, sorry_server=SORRY)
    t = table(vs)
    assert dests(t, KEY) == {"192.0.2.21:80": 2, "192.0.2.22:80": 1, "192.0.2.23:80": 1}
    assert t.update(change(vs, RS3, False)) is None  # 3 >= 3 - 1: hysteresis holds it
    lost = t.update(change(vs, RS1, False))
    assert lost is not None and not lost.up
    assert lost.lines == (
        "Lost quorum 3-1=2 > 1 for VS [192.0.2.10]:tcp:80",
        "Adding sorry server [192.0.2.29]:tcp:80 to VS [192.0.2.10]:tcp:80",
        "Removing alive servers from the pool for VS [192.0.2.10]:tcp:80",
    )
    # Alive servers leave the pool; an inhibited one stays at weight 0 beside the sorry server.
    assert dests(t) == {"192.0.2.22:80": 0, "192.0.2.29:80": 1}
    assert t.update(change(vs, RS3, True)) is None  # 2 < 3 + 1: not yet
    gained = t.update(change(vs, RS1, True))
    assert gained is not None and gained.up
    assert gained.lines == (
        "Gained quorum 3+1=4 <= 4 for VS [192.0.2.10]:tcp:80",
        "Removing sorry server [192.0.2.29]:tcp:80 from VS [192.0.2.10]:tcp:80",
        "Adding alive servers to the pool for VS [192.0.2.10]:tcp:80",
    )
    assert "192.0.2.29:80" not in dests(t)


def test_alpha_start_with_quorum_down_and_an_inhibited_sorry_server() -> None:
    vs = replace(VS, quorum=2, sorry_server=replace(SORRY, inhibit=True))
    t = table(vs, alive={"192.0.2.21": False, "192.0.2.22": False, "192.0.2.23": False})
    (event,) = t.start()
    assert event.lines[0] == "Starting with quorum down 2-0=2 > 0 for VS [192.0.2.10]:tcp:80"
    assert event.lines[1] == "Enabling sorry server [192.0.2.29]:tcp:80 to VS [192.0.2.10]:tcp:80"
    assert dests(t) == {"192.0.2.22:80": 0, "192.0.2.29:80": 1}
    t.update(change(vs, RS1, True))  # weight 2 reaches the quorum
    assert dests(t) == {"192.0.2.21:80": 2, "192.0.2.22:80": 0, "192.0.2.29:80": 0}


def test_service_settings_persistence_flags_and_tunnels() -> None:
    tun = Forwarding(LvsMethod.TUN, tunnel_type="gue", tunnel_port=6080, tunnel_csum="remcsum")
    rs = RealServerSpec(ip_address("2001:db8::21"), 53, forwarding=tun)
    vs = VirtualServerSpec(
        address=ip_address("2001:db8::10"),
        port=53,
        family=6,
        protocol=LvsProtocol.UDP,
        ops=True,
        sched_flags=("sh-port",),
        scheduler="sh",
        persistence_timeout_s=360,
        persistence_granularity="64",
        persistence_engine="sip",
        real_servers=(rs,),
    )
    (svc,) = table(vs).services()
    assert svc.key == ServiceKey(6, 17, "2001:db8::10", 53)
    assert svc.settings() == ("sh", SVC_F_ONEPACKET | SVC_F_SCHED2 | 1, 360, 64, "sip")
    assert svc.dests == (Dest("2001:db8::21", 53, 1, Forward.TUN, 0, 0, TunType.GUE, 6080, 2),)
    v4 = replace(VS, persistence_timeout_s=60, persistence_granularity="255.255.255.0")
    assert table(v4).services()[0].netmask == 24


def test_groups_expand_ranges_and_fwmarks() -> None:
    group = VirtualServerGroupSpec(
        "web",
        (
            VsgEntry(ip_address("192.0.2.10"), ip_address("192.0.2.12"), 8080),
            VsgEntry(fwmark=5, family=4),
        ),
    )
    vs = VirtualServerSpec(group="web", real_servers=(RS1,))
    t = table(vs, virtual_server_groups=(group,))
    keys = [s.key for s in t.services()]
    assert keys == [
        ServiceKey.vip("192.0.2.10", 8080),
        ServiceKey.vip("192.0.2.11", 8080),
        ServiceKey.vip("192.0.2.12", 8080),
        ServiceKey.mark(5),
    ]
    assert all(s.dests == (Dest("192.0.2.21", 80, 2),) for s in t.services())


def test_reload_keeps_the_quorum_state() -> None:
    vs = replace(VS, quorum=2, sorry_server=SORRY)
    old = table(vs, alive={"192.0.2.21": False, "192.0.2.23": False})
    assert [e.up for e in old.start()] == [False]
    states = [change(vs, rs, str(rs.address) == "192.0.2.22") for rs in vs.real_servers]
    new = LvsTable(Config(virtual_servers=(vs,)), states, previous=old)
    assert new.start() == []  # no "Starting with quorum down" again
    assert dests(new) == {"192.0.2.22:80": 0, "192.0.2.29:80": 1}


def test_cli_P_and_C_select_the_subsystems() -> None:
    inst = InstanceConfig(name="VI_1", vrid=1)
    fifos = GlobalDefs(vrrp_notify_fifo=FifoSpec("/run/v"), lvs_notify_fifo=FifoSpec("/run/l"))
    config = Config(global_defs=fifos, instances=(inst,), virtual_servers=(VS,))
    vrrp, check = subsystems(config, parse_args(["-P"])), subsystems(config, parse_args(["-C"]))
    assert (vrrp.virtual_servers, vrrp.instances) == ((), (inst,))
    assert (check.virtual_servers, check.instances) == ((VS,), ())
    # each half opens only its own FIFO (and starts only its own FIFO script)
    assert (vrrp.global_defs.vrrp_notify_fifo, vrrp.global_defs.lvs_notify_fifo) == (
        FifoSpec("/run/v"), None)  # fmt: skip
    assert (check.global_defs.vrrp_notify_fifo, check.global_defs.lvs_notify_fifo) == (
        None, FifoSpec("/run/l"))  # fmt: skip
    assert subsystems(config, parse_args(["-C", "-P"])) == config
    assert parse_args(["-I"]).dont_release_ipvs
    assert not parse_args([]).dont_release_ipvs
