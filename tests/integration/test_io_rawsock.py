"""io.rawsock against the real kernel: adverts cross the lab bridge between namespaces."""

from __future__ import annotations

import asyncio
import socket
import time
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from conftest import poll, run_in
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vrrp import VRRPv3
from scapy.packet import raw
from vrrplab import in_netns
from vrrplab.capture import Capture

from vrrpd.io.errors import IoError
from vrrpd.io.rawsock import RawSocket, SocketPool
from vrrpd.proto.advert import Datagram

GROUP4, GROUP6 = IPv4Address("224.0.0.18"), IPv6Address("ff02::12")


def link_local(lab, node) -> IPv6Address:
    return next(
        IPv6Address(a["local"]) for a in lab.addresses(node) if a["local"].startswith("fe80")
    )


def test_scapy_advert_received_as_datagram(lab):
    r1, r2 = lab.routers
    advert = IP(src=str(r1.addr4.ip), dst=str(GROUP4), ttl=255, tos=0xC0) / VRRPv3(
        vrid=51, priority=150, addrlist=["192.0.2.100"]
    )
    wire = raw(advert)
    got: list[Datagram] = []

    async def scenario() -> None:
        rx = RawSocket("eth0", 4)
        rx.start(asyncio.get_running_loop(), got.extend)
        try:
            with in_netns(r1.ns):  # a plain IP_HDRINCL socket in r1, scapy's bytes as they are
                tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            with tx:
                tx.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
                sent_at = time.time()
                tx.sendto(wire, (str(GROUP4), 0))
            await poll(lambda: got, 5, "the advert in r2")
            times.append(sent_at)
        finally:
            rx.close()

    times: list[float] = []
    run_in(r2.ns, scenario)
    dgram = got[0]
    assert times[0] <= dgram.rx_at <= time.time(), "the kernel's SO_TIMESTAMPNS receive time"
    assert dgram.ttl == 255
    assert dgram.src == r1.addr4.ip and dgram.dst == GROUP4
    assert dgram.ifindex == 2
    assert dgram.data == wire[20:]


@pytest.mark.parametrize("family", [4, 6])
def test_rawsock_send_has_ttl_255_tos_c0_and_source(lab, family):
    r1, r2 = lab.routers
    src = r1.addr4.ip if family == 4 else link_local(lab, r1)
    group = GROUP4 if family == 4 else GROUP6
    payload = raw(VRRPv3(vrid=7, priority=100, ipcount=1, addrlist=["192.0.2.100"]))
    if family == 6:
        payload = raw(VRRPv3(vrid=7, priority=100, ipcount=1, addrlist=["2001:db8::100"]))
    got: list[Datagram] = []

    async def scenario() -> None:
        rx = RawSocket("eth0", family)
        rx.start(asyncio.get_running_loop(), got.extend)
        with in_netns(r1.ns):
            tx = RawSocket("eth0", family, groups=())
        try:
            tx.send(payload, src, group, 255)
            await poll(lambda: got, 5, "the advert in r2")
        finally:
            tx.close()
            rx.close()

    with Capture(lab.client.ns) as cap:
        run_in(r2.ns, scenario)
        frames = [Ether(f) for _, f in cap.snapshot()]
    sent = [
        f for f in frames if (IP in f and f[IP].proto == 112) or (IPv6 in f and f[IPv6].nh == 112)
    ]
    assert sent, "the client saw no advert"
    if family == 4:
        ip = sent[0][IP]
        assert (ip.ttl, ip.tos, ip.src, ip.dst) == (255, 0xC0, str(src), str(group))
        assert not ip.flags.DF  # as keepalived sends them
    else:
        ip6 = sent[0][IPv6]
        assert (ip6.hlim, ip6.tc, ip6.src, ip6.dst) == (255, 0xC0, str(src), str(group))
        assert VRRPv3(raw(ip6.payload)).chksum != 0  # the kernel filled it in (IPV6_CHECKSUM)
    dgram = got[0]
    assert (dgram.src, dgram.dst, dgram.ttl, dgram.ifindex) == (src, group, 255, 2)
    assert dgram.data[:3] == payload[:3]


def test_unicast_ttl_and_destination(lab):
    r1, r2 = lab.routers
    got: list[Datagram] = []
    payload = raw(VRRPv3(vrid=9, priority=100, ipcount=1, addrlist=["192.0.2.100"]))

    async def scenario() -> None:
        rx = RawSocket("eth0", 4, groups=())
        rx.start(asyncio.get_running_loop(), got.extend)
        with in_netns(r1.ns):
            tx = SocketPool().get("eth0", 4)
        try:
            tx.send(payload, r1.addr4.ip, r2.addr4.ip, 64)  # keepalived `unicast_ttl 64`
            await poll(lambda: got, 5, "the unicast advert in r2")
        finally:
            tx.close()
            rx.close()

    run_in(r2.ns, scenario)
    assert (got[0].dst, got[0].ttl) == (r2.addr4.ip, 64)


def test_a_burst_is_handed_up_in_batches_in_order(lab):
    """What one wake-up reads is one hand-off (RawSocket.start): 40 adverts sent back to back
    arrive complete, in order, in fewer hand-offs than adverts."""
    r1, r2 = lab.routers
    batches: list[list[Datagram]] = []
    payloads = [
        raw(VRRPv3(vrid=v, priority=100, ipcount=1, addrlist=["192.0.2.100"])) for v in range(1, 41)
    ]

    async def scenario() -> None:
        rx = RawSocket("eth0", 4)
        rx.start(asyncio.get_running_loop(), batches.append)
        with in_netns(r1.ns):
            tx = RawSocket("eth0", 4, groups=())
        try:
            for payload in payloads:  # no await in between: the loop reads only afterwards
                tx.send(payload, r1.addr4.ip, GROUP4, 255)
            await poll(lambda: sum(map(len, batches)) >= 40, 5, "40 adverts in r2")
        finally:
            tx.close()
            rx.close()

    run_in(r2.ns, scenario)
    got = [d for batch in batches for d in batch]
    assert [d.data[1] for d in got] == list(range(1, 41))
    assert len(batches) < 40, "every advert came in a hand-off of its own"


def test_missing_interface_is_a_clear_error(lab):
    with in_netns(lab.routers[0].ns), pytest.raises(IoError, match="nosuch0: No such device"):
        RawSocket("nosuch0", 4)
    assert ip_address("224.0.0.18") == GROUP4
