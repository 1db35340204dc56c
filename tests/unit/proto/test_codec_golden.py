"""Golden vectors for the VRRP codec, hand computed and cross-checked with scapy's VRRP layers.

RFC 3768 section 5 (VRRPv2), RFC 5798 / RFC 9568 section 5 (VRRPv3). Each vector's checksum is
worked out in the comment above it (16-bit big-endian words, end-around carry, complement), then
scapy, an independent implementation, builds the same packet and decodes ours.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.utils import checksum

from vrrpd.proto.advert import Advert
from vrrpd.proto.packet import decode, encode

SRC4 = IPv4Address("192.0.2.1")
PEER4 = IPv4Address("192.0.2.2")
GROUP4 = IPv4Address("224.0.0.18")
VIP1 = IPv4Address("192.0.2.100")
VIP2 = IPv4Address("192.0.2.101")
SRC6 = IPv6Address("fe80::1")
GROUP6 = IPv6Address("ff02::12")
VIP6_LL = IPv6Address("fe80::100")
VIP6 = IPv6Address("2001:db8::100")

# VRRPv2, VRID 1, priority 100, 1 address, no auth, 1 s. Words: 2101 6401 0001 [0000] c000 0264
# + four zero auth words. 2101+6401+0001+c000+0264 = 0x14767 -> 0x4768 -> ~ = 0xb897.
V2_NONE = Advert(2, 1, 100, 1, (VIP1,))
V2_NONE_HEX = "2101 6401 0001 b897 c0000264 0000000000000000"

# VRRPv2, VRID 51, priority 150, 2 addresses, auth PASS "secret", 1 s.
# The auth words are summed too (RFC 3768 5.3.8 covers the whole message):
# 2133+9602+0101+c000+0264+c000+0265+7365+6372+6574+0000 = 0x3794a -> 0x794d -> ~ = 0x86b2.
V2_PASS = Advert(2, 51, 150, 1, (VIP1, VIP2), auth_type=1, auth_data=b"secret")
V2_PASS_HEX = "2133 9602 0101 86b2 c0000264 c0000265 7365637265740000"

# VRRPv3, VRID 51, priority 150, 1 address, 100 cs. Message words 3133 9601 0064 c000 0264.
V3_4 = Advert(3, 51, 150, 100, (VIP1,))
# RFC 5798 pseudo-header to the group: + c000 0201 (src) + e000 0012 (dst) + 0070 + 000c (len)
# = 0x32c8b -> 0x2c8e -> ~ = 0xd371.
V3_4_GROUP_HEX = "3133 9601 0064 d371 c0000264"
# RFC 9568 / v3_checksum_as_v2: message only, 0x189fc -> 0x89fd -> ~ = 0x7602.
V3_4_AS_V2_HEX = "3133 9601 0064 7602 c0000264"
# Unicast to 192.0.2.2: dst words c000 0202 instead of e000 0012, 0x32c8b - 0x1e10 = 0x30e7b
# -> 0x0e7e -> ~ = 0xf181.
V3_4_UNICAST_HEX = "3133 9601 0064 f181 c0000264"

# VRRPv3 over IPv6, VRID 51, priority 150, link-local first (RFC 9568 5.2.9), 100 cs, from
# fe80::1 to ff02::12. Message 3133+9602+0064+fe80+0100+2001+0db8+0100 = 0x1f5d2; RFC 8200
# pseudo-header fe80+0001 (src) + ff02+0012 (dst) + 0028 (length 40) + 0070 (next header):
# 0x3f3ff -> 0xf402 -> ~ = 0x0bfd.
V3_6 = Advert(3, 51, 150, 100, (VIP6_LL, VIP6))
V3_6_HEX = "3133 9602 0064 0bfd fe800000000000000000000000000100 20010db8000000000000000000000100"


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def scapy_v4(dst: IPv4Address, layer: VRRP | VRRPv3) -> bytes:
    return bytes(IP(src=str(SRC4), dst=str(dst)) / layer)[20:]


def scapy_v3_4(advert: Advert, dst: IPv4Address) -> bytes:
    layer = VRRPv3(
        vrid=advert.vrid,
        priority=advert.priority,
        adv=advert.adver_int,
        addrlist=[str(a) for a in advert.addresses],
    )
    return scapy_v4(dst, layer)


def scapy_v2(advert: Advert) -> bytes:
    field = advert.auth_data.ljust(8, b"\x00")
    layer = VRRP(
        vrid=advert.vrid,
        priority=advert.priority,
        adv=advert.adver_int,
        authtype=advert.auth_type,
        addrlist=[str(a) for a in advert.addresses],
        auth1=int.from_bytes(field[:4], "big"),
        auth2=int.from_bytes(field[4:], "big"),
    )
    return scapy_v4(GROUP4, layer)


def scapy_v3_6(advert: Advert) -> bytes:
    layer = VRRPv3(
        vrid=advert.vrid,
        priority=advert.priority,
        adv=advert.adver_int,
        addrlist=[str(a) for a in advert.addresses],
    )
    return bytes(IPv6(src=str(SRC6), dst=str(GROUP6)) / layer)[40:]


@pytest.mark.parametrize(
    ("advert", "hexstr"),
    [(V2_NONE, V2_NONE_HEX), (V2_PASS, V2_PASS_HEX)],
    ids=["v2-none", "v2-pass"],
)
def test_v2_golden(advert: Advert, hexstr: str) -> None:
    wire = h(hexstr)
    assert encode(advert, None, None) == wire
    assert encode(advert, SRC4, GROUP4) == wire  # no pseudo-header: addresses do not matter
    assert scapy_v2(advert) == wire
    assert decode(scapy_v2(advert), SRC4, GROUP4) == advert


def test_v2_checksum_agrees_with_scapy_recomputation() -> None:
    wire = h(V2_PASS_HEX)
    parsed = VRRP(wire)
    assert parsed.chksum == 0x86B2
    assert parsed.authtype == 1
    assert parsed.addrlist == [str(VIP1), str(VIP2)]
    assert (parsed.auth1, parsed.auth2) == (0x73656372, 0x65740000)
    del parsed.chksum  # let scapy recompute it
    assert bytes(parsed) == wire


@pytest.mark.parametrize(
    ("dst", "as_v2", "hexstr"),
    [
        (GROUP4, False, V3_4_GROUP_HEX),
        (GROUP4, True, V3_4_AS_V2_HEX),
        (PEER4, False, V3_4_UNICAST_HEX),
        (PEER4, True, V3_4_AS_V2_HEX),
    ],
    ids=["group", "group-as-v2", "unicast", "unicast-as-v2"],
)
def test_v3_ipv4_golden(dst: IPv4Address, as_v2: bool, hexstr: str) -> None:
    wire = h(hexstr)
    assert encode(V3_4, SRC4, dst, checksum_as_v2=as_v2) == wire
    assert decode(wire, SRC4, dst) == V3_4


@pytest.mark.parametrize("dst", [GROUP4, PEER4], ids=["group", "unicast"])
def test_v3_ipv4_pseudo_header_form_matches_scapy(dst: IPv4Address) -> None:
    ours = encode(V3_4, SRC4, dst)
    assert ours == scapy_v3_4(V3_4, dst)
    assert decode(scapy_v3_4(V3_4, dst), SRC4, dst) == V3_4


def test_v3_ipv4_rfc9568_form_matches_scapy_plain_checksum() -> None:
    # scapy always adds the pseudo-header for VRRPv3; a VRRPv3 layer with no IP underneath and
    # the checksum computed as for VRRPv2 is RFC 9568's form.
    unchecked = bytes(VRRPv3(vrid=51, priority=150, adv=100, ipcount=1, chksum=0)) + VIP1.packed
    assert checksum(unchecked) == 0x7602
    assert encode(V3_4, None, None, checksum_as_v2=True) == h(V3_4_AS_V2_HEX)


def test_v3_scapy_parses_our_bytes() -> None:
    ours = encode(V3_4, SRC4, GROUP4)
    header = IP(src=str(SRC4), dst=str(GROUP4), proto=112, len=20 + len(ours))
    packet = IP(bytes(header) + ours)
    layer = packet[VRRPv3]
    assert (layer.vrid, layer.priority, layer.adv, layer.ipcount) == (51, 150, 100, 1)
    assert layer.addrlist == [str(VIP1)]
    assert layer.chksum == 0xD371


def test_v3_ipv6_golden() -> None:
    wire = h(V3_6_HEX)
    assert encode(V3_6, SRC6, GROUP6) == wire
    assert scapy_v3_6(V3_6) == wire
    assert decode(scapy_v3_6(V3_6), SRC6, GROUP6) == V3_6
    parsed = IPv6(bytes(IPv6(src=str(SRC6), dst=str(GROUP6), nh=112, plen=len(wire))) + wire)
    assert parsed[VRRPv3].addrlist == [str(VIP6_LL), str(VIP6)]
    assert parsed[VRRPv3].chksum == 0x0BFD


def test_v3_ipv6_checksum_as_v2_is_ignored() -> None:
    # RFC 9568 drops the pseudo-header for IPv4 only; IPv6 keeps RFC 8200's.
    assert encode(V3_6, SRC6, GROUP6, checksum_as_v2=True) == h(V3_6_HEX)


def test_v3_ipv4_accepts_old_keepalived_unicast_checksum() -> None:
    # keepalived < 1.3.6 put 224.0.0.18 in the pseudo-header of unicast adverts.
    old = encode(V3_4, SRC4, GROUP4)
    assert decode(old, SRC4, PEER4) == V3_4


def test_v3_reserved_bits_ignored() -> None:
    # RFC 5798 5.2.6: reserved bits MUST be ignored on receive; scapy sets them for us.
    layer = VRRPv3(vrid=51, priority=150, res=0xF, adv=100, addrlist=[str(VIP1)])
    wire = scapy_v4(GROUP4, layer)
    assert wire[4] >> 4 == 0xF
    assert decode(wire, SRC4, GROUP4) == V3_4


def test_ethernet_padding_is_ignored() -> None:
    # A 12-byte VRRPv3 message in a minimum Ethernet frame arrives with trailing zeros.
    padded = h(V3_4_GROUP_HEX) + bytes(14)
    assert decode(padded, SRC4, GROUP4) == V3_4
    assert decode(h(V2_NONE_HEX) + b"\xff" * 6, SRC4, GROUP4) == V2_NONE


def test_count_zero_and_interval_zero_decode() -> None:
    # Both are receive checks (RFC 9568 5.2.5, erratum 8301), not decode errors.
    for advert in (Advert(3, 7, 0, 0, ()), Advert(2, 7, 0, 0, ())):
        assert decode(encode(advert, SRC4, GROUP4), SRC4, GROUP4) == advert
