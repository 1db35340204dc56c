"""io.announce: GARP and unsolicited NA frames, captured in another namespace, decoded by scapy."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from conftest import run_in, wait_until
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import raw
from vrrplab.capture import Capture

from vrrpd.io.announce import announce

VIP4, VIP6 = IPv4Address("192.0.2.100"), IPv6Address("2001:db8::100")


def test_gratuitous_arp_and_unsolicited_na(lab):
    r1 = lab.routers[0]
    with Capture(lab.client.ns) as cap:
        run_in(r1.ns, lambda: announce("eth0", [VIP4, VIP6], repeat=2, interval_s=0.01))

        def ours() -> list[Ether]:
            frames = [Ether(f) for _, f in cap.snapshot()]
            return [f for f in frames if f.src == r1.mac and (ARP in f or ICMPv6ND_NA in f)]

        frames = wait_until(lambda: len(ours()) >= 4 and ours(), 5, "2 GARPs and 2 NAs")
    arps = [f for f in frames if ARP in f]
    nas = [f for f in frames if ICMPv6ND_NA in f]
    assert len(arps) == 2 and len(nas) == 2
    arp = arps[0]
    assert arp.dst == "ff:ff:ff:ff:ff:ff"
    assert arp[ARP].op == 1
    assert arp[ARP].psrc == arp[ARP].pdst == str(VIP4)
    assert arp[ARP].hwsrc == r1.mac and arp[ARP].hwdst == "ff:ff:ff:ff:ff:ff"
    na = nas[0]
    assert na.dst == "33:33:00:00:00:01"
    assert (na[IPv6].src, na[IPv6].dst, na[IPv6].hlim) == (str(VIP6), "ff02::1", 255)
    assert na[ICMPv6ND_NA].O == 1 and na[ICMPv6ND_NA].R == 0 and na[ICMPv6ND_NA].S == 0
    assert na[ICMPv6ND_NA].tgt == str(VIP6)
    assert na[ICMPv6NDOptDstLLAddr].lladdr == r1.mac
    # scapy recomputes the checksum when we drop it: ours must be the same.
    rebuilt = na.copy()
    del rebuilt[ICMPv6ND_NA].cksum
    assert Ether(raw(rebuilt))[ICMPv6ND_NA].cksum == na[ICMPv6ND_NA].cksum


def test_na_router_flag_follows_forwarding(lab):
    r1 = lab.routers[0]
    from vrrplab.netns import sysctl

    sysctl(r1.ns, "net.ipv6.conf.eth0.forwarding", 1)
    with Capture(lab.client.ns) as cap:
        run_in(r1.ns, lambda: announce("eth0", [VIP6], repeat=1))

        def nas() -> list[Ether]:
            frames = [Ether(f) for _, f in cap.snapshot()]
            return [f for f in frames if f.src == r1.mac and ICMPv6ND_NA in f]

        na = wait_until(nas, 5, "the NA")[0]
    assert na[ICMPv6ND_NA].R == 1 and na[ICMPv6ND_NA].O == 1
