"""vrrpd.io.ipvs against a real IPVS kernel (in the VM), checked with ipvsadm.

Each test gets its own network namespace, so it starts from an empty IPVS table.
"""

from __future__ import annotations

from vm_guest import ipvsadm, run_ns, table

from vrrpd.io.ipvs import Changes, Dest, Forward, Ipvs, Service, ServiceKey, TunType

WEB = ServiceKey.vip("192.0.2.10", 80, "tcp")
DNS = ServiceKey.vip("192.0.2.11", 53, "udp")
SCTP = ServiceKey.vip("192.0.2.12", 3868, "sctp")
MARK = ServiceKey.mark(7)
WEB6 = ServiceKey.vip("2001:db8::10", 443, "tcp")

DESIRED = [
    Service(WEB, "rr", dests=(Dest("192.0.2.21", 80, 2), Dest("192.0.2.22", 8080, 0))),
    Service(DNS, "wrr", dests=(Dest("192.0.2.23", 53, 1, Forward.DR, 100, 10),)),
    Service(SCTP, "lc", dests=(Dest("192.0.2.24", 3868, 1, Forward.TUN),)),
    Service(MARK, "wlc", timeout_s=300, netmask=24, dests=(Dest("192.0.2.25", 0, 3, Forward.DR),)),
    Service(
        WEB6,
        "sh",
        timeout_s=60,
        netmask=64,
        dests=(Dest("2001:db8::21", 443, 1, Forward.TUN, tun_type=TunType.GUE, tun_port=6080),),
    ),
]

EXPECTED = [
    "TCP 192.0.2.10:80 rr",
    "-> 192.0.2.21:80 Masq 2 0 0",
    "-> 192.0.2.22:8080 Masq 0 0 0",
    "UDP 192.0.2.11:53 wrr",
    "-> 192.0.2.23:53 Route 1 0 0",
    "SCTP 192.0.2.12:3868 lc",
    "-> 192.0.2.24:3868 Tunnel 1 0 0",
    "TCP [2001:db8::10]:443 sh persistent 60 mask 64",
    "-> [2001:db8::21]:443 Tunnel 1 0 0",
    "FWM 7 wlc persistent 300 mask 255.255.255.0",
    "-> 192.0.2.25:0 Route 3 0 0",
]


async def _apply(*tables: list[Service]) -> list[Changes]:
    ipvs = Ipvs()
    try:
        return [await ipvs.apply(t) for t in tables]
    finally:
        ipvs.close()


def test_apply_programs_every_attribute(netns: str) -> None:
    (changes,) = run_ns(netns, lambda: _apply(DESIRED))
    assert not changes.errors
    assert len(changes.added) == 5 + 6  # services + destinations
    assert sorted(table(netns)) == sorted(EXPECTED)
    thresholds = ipvsadm(netns, "-Ln", "--thresholds", "-u", "192.0.2.11:53")
    assert "192.0.2.23:53 100 10" in " ".join(thresholds.split())

    async def dump() -> dict[ServiceKey, Service]:
        ipvs = Ipvs()
        try:
            return await ipvs.dump()
        finally:
            ipvs.close()

    got = run_ns(netns, dump)
    for want in DESIRED:  # the decoder reads back exactly what was written
        assert got[want.key].settings() == want.settings()
        assert sorted(got[want.key].dests, key=str) == sorted(want.dests, key=str)


def test_apply_changes_only_the_differences(netns: str) -> None:
    web = DESIRED[0]
    reweighted = Service(WEB, "rr", dests=(Dest("192.0.2.21", 80, 5), Dest("192.0.2.22", 8080, 0)))
    moved = Service(WEB, "wlc", dests=(Dest("192.0.2.21", 80, 5), Dest("192.0.2.26", 80)))
    first, again, weight, swap, same = run_ns(
        netns,
        lambda: _apply([web, DESIRED[1]], [web, DESIRED[1]], [reweighted], [moved], [moved]),
    )
    assert first.added and not first.errors
    assert not again  # idempotent: nothing to do
    assert weight.edited == ["[192.0.2.21]:tcp:80 of [192.0.2.10]:tcp:80"]
    assert weight.removed == ["[192.0.2.11]:udp:53"]  # ours, and no longer wanted
    assert not weight.added
    assert swap.edited == ["[192.0.2.10]:tcp:80"]  # the scheduler, edited in place
    assert swap.removed == ["[192.0.2.22]:tcp:8080 of [192.0.2.10]:tcp:80"]
    assert swap.added == ["[192.0.2.26]:tcp:80 of [192.0.2.10]:tcp:80"]
    assert not same
    assert table(netns) == [
        "TCP 192.0.2.10:80 wlc",
        "-> 192.0.2.21:80 Masq 5 0 0",
        "-> 192.0.2.26:80 Masq 1 0 0",
    ]


def test_foreign_services_survive_and_leftovers_are_adopted(netns: str) -> None:
    ipvsadm(netns, "-A", "-t", "192.0.2.99:80", "-s", "rr")  # an operator's own service
    ipvsadm(netns, "-A", "-t", "192.0.2.10:80", "-s", "rr")  # left by an earlier run (-I)
    ipvsadm(netns, "-a", "-t", "192.0.2.10:80", "-r", "192.0.2.21:80", "-m", "-w", "2")

    async def scenario() -> tuple[Changes, Changes]:
        ipvs = Ipvs()
        try:
            applied = await ipvs.apply([DESIRED[0]])
            return applied, await ipvs.clear()
        finally:
            ipvs.close()

    applied, cleared = run_ns(netns, scenario)
    assert applied.added == ["[192.0.2.22]:tcp:8080 of [192.0.2.10]:tcp:80"]  # no flap
    assert not applied.edited and not applied.removed
    assert cleared.removed == ["[192.0.2.10]:tcp:80"]
    assert table(netns) == ["TCP 192.0.2.99:80 rr"]


def test_one_refused_service_does_not_block_the_others(netns: str) -> None:
    bad = Service(
        ServiceKey.vip("192.0.2.13", 80), "no-such-scheduler", dests=(Dest("192.0.2.21", 80),)
    )
    (changes,) = run_ns(netns, lambda: _apply([bad, DESIRED[0]]))
    assert len(changes.errors) == 1
    assert changes.errors[0].startswith("add [192.0.2.13]:tcp:80: IPVS:")
    assert "TCP 192.0.2.10:80 rr" in table(netns)
    assert not any("192.0.2.13" in line for line in table(netns))


def test_deleting_what_is_already_gone_is_success(netns: str) -> None:
    async def scenario() -> Changes:
        ipvs = Ipvs()
        try:
            await ipvs.apply([DESIRED[0]])
            ipvsadm(netns, "-D", "-t", "192.0.2.10:80")  # someone else removed it meanwhile
            return await ipvs.clear()
        finally:
            ipvs.close()

    cleared = run_ns(netns, scenario)
    assert not cleared.errors
    assert table(netns) == []
