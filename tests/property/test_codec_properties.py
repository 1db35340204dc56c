"""Properties of the VRRP codec (RFC 3768 / RFC 5798 / RFC 9568 section 5).

- decode(encode(a)) == a for every advert whose fields are in range, both versions, both IPv4
  checksum forms, IPv4 and IPv6;
- decode is total: on arbitrary bytes and on damaged valid packets it returns an Advert or
  raises PacketError, never anything else;
- the checksum agrees with a word-by-word RFC 1071 reference.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrrpd.errors import PacketError
from vrrpd.proto.advert import Advert, IPAddress
from vrrpd.proto.checksum import internet_checksum
from vrrpd.proto.packet import decode, encode

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ipv4 = st.integers(0, 2**32 - 1).map(IPv4Address)
ipv6 = st.integers(0, 2**128 - 1).map(IPv6Address)
vrid = st.integers(1, 255)
priority = st.integers(0, 255)
count = st.integers(0, 20)

v2_adverts = st.builds(
    Advert,
    version=st.just(2),
    vrid=vrid,
    priority=priority,
    adver_int=st.integers(0, 255),
    addresses=st.lists(ipv4, max_size=20).map(tuple),
    auth_type=st.integers(0, 2),
    # The decoder returns the 8-byte field without its NUL padding (keepalived pads passwords).
    auth_data=st.binary(max_size=8).map(lambda b: b.rstrip(b"\x00")),
)


def v3_adverts(address: st.SearchStrategy[IPAddress]) -> st.SearchStrategy[Advert]:
    return st.builds(
        Advert,
        version=st.just(3),
        vrid=vrid,
        priority=priority,
        adver_int=st.integers(0, 4095),
        addresses=st.lists(address, max_size=20).map(tuple),
    )


def unicast_or_group4() -> st.SearchStrategy[IPv4Address]:
    return st.one_of(st.just(IPv4Address("224.0.0.18")), ipv4)


@st.composite
def valid_packets(draw: st.DrawFn) -> tuple[bytes, IPAddress, IPAddress]:
    """A valid encoded message with the addresses it travels between."""
    kind = draw(st.sampled_from(["v2", "v3-4", "v3-6"]))
    if kind == "v2":
        src, dst = draw(ipv4), draw(unicast_or_group4())
        return encode(draw(v2_adverts), None, None), src, dst
    if kind == "v3-4":
        src, dst = draw(ipv4), draw(unicast_or_group4())
        as_v2 = draw(st.booleans())
        return encode(draw(v3_adverts(ipv4)), src, dst, checksum_as_v2=as_v2), src, dst
    src6, dst6 = draw(ipv6), draw(ipv6)
    return encode(draw(v3_adverts(ipv6)), src6, dst6), src6, dst6


def decode_or_packet_error(data: bytes, src: IPAddress, dst: IPAddress) -> Advert | None:
    """Only PacketError may escape decode; anything else fails the property."""
    try:
        return decode(data, src, dst)
    except PacketError:
        return None


@FAST
@given(advert=v2_adverts, src=ipv4, dst=unicast_or_group4())
def test_roundtrip_v2(advert: Advert, src: IPv4Address, dst: IPv4Address) -> None:
    assert decode(encode(advert, None, None), src, dst) == advert
    assert encode(advert, src, dst) == encode(advert, None, None)


@FAST
@given(advert=v3_adverts(ipv4), src=ipv4, dst=unicast_or_group4(), as_v2=st.booleans())
def test_roundtrip_v3_ipv4(advert: Advert, src: IPv4Address, dst: IPv4Address, as_v2: bool) -> None:
    assert decode(encode(advert, src, dst, checksum_as_v2=as_v2), src, dst) == advert


@FAST
@given(advert=v3_adverts(ipv6), src=ipv6, dst=ipv6)
def test_roundtrip_v3_ipv6(advert: Advert, src: IPv6Address, dst: IPv6Address) -> None:
    assert decode(encode(advert, src, dst), src, dst) == advert


@FAST
@given(advert=v3_adverts(ipv4), src=ipv4, peer=ipv4)
def test_old_keepalived_unicast_checksum_accepted(
    advert: Advert, src: IPv4Address, peer: IPv4Address
) -> None:
    wire = encode(advert, src, IPv4Address("224.0.0.18"))
    assert decode(wire, src, peer) == advert


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), v6=st.booleans())
def test_decode_total_on_arbitrary_bytes(data: bytes, v6: bool) -> None:
    if v6:
        decode_or_packet_error(data, IPv6Address("fe80::1"), IPv6Address("ff02::12"))
    else:
        decode_or_packet_error(data, IPv4Address("192.0.2.1"), IPv4Address("224.0.0.18"))


@settings(max_examples=200, deadline=None)
@given(
    data=st.integers(0, 255).flatmap(
        lambda count: st.tuples(
            st.sampled_from([0x21, 0x31]),
            st.binary(min_size=2, max_size=2),
            st.just(count),
            st.binary(min_size=0, max_size=count * 16 + 24),
        )
    ),
    v6=st.booleans(),
)
def test_decode_total_on_plausible_headers(data: tuple[int, bytes, int, bytes], v6: bool) -> None:
    # Random bytes rarely start with a valid version/type; these always do and reach deeper.
    head, vrid_prio, n, rest = data
    blob = bytes([head]) + vrid_prio + bytes([n]) + rest
    src: IPAddress = IPv6Address("fe80::1") if v6 else IPv4Address("192.0.2.1")
    dst: IPAddress = IPv6Address("ff02::12") if v6 else IPv4Address("224.0.0.18")
    decode_or_packet_error(blob, src, dst)


@st.composite
def damaged_packets(draw: st.DrawFn) -> tuple[str, bytes, bytes, IPAddress, IPAddress]:
    """(how, damaged, original, src, dst): one byte changed, a truncation or trailing bytes."""
    wire, src, dst = draw(valid_packets())
    how = draw(st.sampled_from(["mutate", "truncate", "extend"]))
    if how == "mutate":
        damaged = bytearray(wire)
        damaged[draw(st.integers(0, len(wire) - 1))] = draw(st.integers(0, 255))
        data = bytes(damaged)
    elif how == "truncate":
        data = wire[: draw(st.integers(0, len(wire) - 1))]
    else:
        data = wire + draw(st.binary(min_size=1, max_size=40))
    return how, data, wire, src, dst


@settings(max_examples=300, deadline=None)
@given(case=damaged_packets())
def test_decode_total_on_damaged_packets(
    case: tuple[str, bytes, bytes, IPAddress, IPAddress],
) -> None:
    how, data, wire, src, dst = case
    result = decode_or_packet_error(data, src, dst)
    if how == "extend":
        # Trailing bytes are padding: ignored.
        assert result == decode(wire, src, dst)
    elif how == "truncate":
        assert result is None


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_checksum_matches_rfc1071_reference(data: bytes) -> None:
    padded = data + b"\x00" if len(data) % 2 else data
    total = 0
    for (word,) in struct.iter_unpack("!H", padded):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    assert internet_checksum(data) == ~total & 0xFFFF
