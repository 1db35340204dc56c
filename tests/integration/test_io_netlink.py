"""io.netlink and io.monitor against the real kernel in a lab namespace."""

from __future__ import annotations

import asyncio
import json
import subprocess
from ipaddress import IPv4Address, ip_address, ip_interface

import pytest
from conftest import poll, run_in

from vrrpd.config.model import RouteSpec, RuleSpec, VipSpec
from vrrpd.io.errors import IoError
from vrrpd.io.monitor import AddrChange, LinkMonitor
from vrrpd.io.netlink import LinkInfo, Netlink

V4 = VipSpec(ip_interface("192.0.2.100/24"), brd="+", label="eth0:vip")
V6 = VipSpec(ip_interface("2001:db8::100/128"), preferred_lft=0)


def addr_info(ns: str, dev: str = "eth0") -> dict[str, dict[str, object]]:
    out = subprocess.run(["ip", "-n", ns, "-j", "addr", "show", "dev", dev],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return {a["local"]: a for a in json.loads(out)[0]["addr_info"]}


def test_vips_added_and_removed_idempotently(lab):
    r1 = lab.routers[0]

    async def scenario() -> None:
        nl = Netlink()
        try:
            for _ in range(2):  # the second add meets EEXIST: still success
                await nl.add_vips("eth0", [V4, V6])
            addrs = addr_info(r1.ns)
            v4 = addrs["192.0.2.100"]
            assert v4["prefixlen"] == 24
            assert v4["label"] == "eth0:vip"
            assert v4["broadcast"] == "192.0.2.255"
            v6 = addrs["2001:db8::100"]
            assert v6["prefixlen"] == 128
            assert v6["nodad"] is True
            assert v6["preferred_life_time"] == 0
            for _ in range(2):  # the second delete meets EADDRNOTAVAIL: still success
                await nl.del_vips("eth0", [V4, V6])
            assert not {"192.0.2.100", "2001:db8::100"} & set(addr_info(r1.ns))
        finally:
            await nl.close()

    run_in(r1.ns, scenario)


def test_routes_and_rules_idempotent(lab):
    r1 = lab.routers[0]
    route = RouteSpec(args=("198.51.100.0/24", "via", "192.0.2.1"), dst="198.51.100.0/24",
                      via=IPv4Address("192.0.2.1"), dev="eth0")  # fmt: skip
    rule = RuleSpec(args=("from", "203.0.113.0/24", "table", "100"), from_="203.0.113.0/24",
                    table="100", preference=1000)  # fmt: skip

    def shown(kind: str) -> str:
        cmd = ["ip", "-n", r1.ns, kind]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    async def scenario() -> None:
        nl = Netlink()
        try:
            for _ in range(2):
                await nl.add_routes([route])
                await nl.add_rules([rule])
            assert "198.51.100.0/24 via 192.0.2.1" in shown("route")
            assert "1000:\tfrom 203.0.113.0/24 lookup 100" in shown("rule")
            for _ in range(2):
                await nl.del_routes([route])
                await nl.del_rules([rule])
            assert "198.51.100.0" not in shown("route")
            assert "203.0.113.0" not in shown("rule")
        finally:
            await nl.close()

    run_in(r1.ns, scenario)


def test_link_info_and_unknown_interface(lab):
    r1 = lab.routers[0]

    async def scenario() -> LinkInfo:
        nl = Netlink()
        try:
            with pytest.raises(IoError, match="no such interface"):
                await nl.add_vips("nosuch0", [V4])
            return await nl.link_info("eth0")
        finally:
            await nl.close()

    info = run_in(r1.ns, scenario)
    assert info.up and info.mac == r1.mac
    assert info.addr4 == r1.addr4.ip
    assert info.addr6 is not None and info.addr6.is_link_local


def test_monitor_reports_link_down_up_and_address_deletion(lab):
    r1 = lab.routers[0]
    events: list[object] = []

    def eth0_up() -> list[bool]:
        return [e.up for e in events if isinstance(e, LinkInfo) and e.interface == "eth0"]

    async def scenario() -> None:
        monitor = LinkMonitor(events.append)
        monitor.start(asyncio.get_running_loop())
        try:
            assert eth0_up() == [True]
            lab.partition(r1)  # carrier goes away on the router's side of the veth
            await poll(lambda: eth0_up() == [True, False], 5, "eth0 reported down")
            lab.partition(r1, cut=False)
            await poll(lambda: eth0_up() == [True, False, True], 5, "eth0 reported up")
            vip = "192.0.2.50/32"
            subprocess.run(["ip", "-n", r1.ns, "addr", "add", vip, "dev", "eth0"], check=True)
            subprocess.run(["ip", "-n", r1.ns, "addr", "del", vip, "dev", "eth0"], check=True)
            want = [AddrChange("eth0", 2, ip_interface(vip), True),
                    AddrChange("eth0", 2, ip_interface(vip), False)]  # fmt: skip
            await poll(lambda: [e for e in events if isinstance(e, AddrChange)] == want, 5,
                       "address added then deleted")  # fmt: skip
        finally:
            monitor.close()

    run_in(r1.ns, scenario)
    assert monitor_addr4(events) == ip_address("192.0.2.11")


def monitor_addr4(events: list[object]) -> object:
    infos = [e for e in events if isinstance(e, LinkInfo) and e.interface == "eth0"]
    return infos[-1].addr4
