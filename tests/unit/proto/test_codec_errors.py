"""Every decode error, with its exact DropReason, and encode's refusal of unencodable fields.

UNH-IOL VRRP Operations Test Suite 4.2 (invalid version), 4.3 (invalid packet length), 4.4
(invalid checksum), 4.6 (invalid auth type), 4.8 (unknown type); RFC 3768 / RFC 5798 section 7.1.
Packets are built by our encoder, then damaged, with the checksum fixed up where the test is
about something else, so that each case fails for exactly one reason.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from vrrpd.errors import DropReason, PacketError
from vrrpd.proto.advert import Advert
from vrrpd.proto.checksum import internet_checksum, ones_sum, pseudo_sum4
from vrrpd.proto.packet import decode, encode

SRC4 = IPv4Address("192.0.2.1")
GROUP4 = IPv4Address("224.0.0.18")
PEER4 = IPv4Address("192.0.2.2")
SRC6 = IPv6Address("fe80::1")
GROUP6 = IPv6Address("ff02::12")
VIPS4 = (IPv4Address("192.0.2.100"), IPv4Address("192.0.2.101"))

V2 = Advert(2, 10, 100, 1, VIPS4)
V3 = Advert(3, 10, 100, 100, VIPS4)
V3_6 = Advert(3, 10, 100, 100, (IPv6Address("fe80::100"),))


def refresh_v2(msg: bytearray) -> bytes:
    """Recompute a VRRPv2 checksum after editing a field."""
    msg[6:8] = b"\x00\x00"
    msg[6:8] = internet_checksum(bytes(msg)).to_bytes(2, "big")
    return bytes(msg)


def refresh_v3(msg: bytearray, dst: IPv4Address = GROUP4) -> bytes:
    """Recompute a VRRPv3/IPv4 checksum (RFC 5798 pseudo-header form) after editing a field."""
    msg[6:8] = b"\x00\x00"
    total = ones_sum(bytes(msg)) + pseudo_sum4(SRC4, dst, len(msg))
    msg[6:8] = (0xFFFF - (total % 0xFFFF or 0xFFFF)).to_bytes(2, "big")
    return bytes(msg)


def reason_of(data: bytes, src: IPv4Address | IPv6Address = SRC4, dst=GROUP4) -> DropReason:
    with pytest.raises(PacketError) as caught:
        decode(data, src, dst)
    return caught.value.reason


def test_fixups_are_neutral() -> None:
    assert decode(refresh_v2(bytearray(encode(V2, None, None))), SRC4, GROUP4) == V2
    assert decode(refresh_v3(bytearray(encode(V3, SRC4, GROUP4))), SRC4, GROUP4) == V3


# --- UNH-IOL 4.3: invalid packet length ---------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 7])
def test_shorter_than_header(size: int) -> None:
    assert reason_of(encode(V3, SRC4, GROUP4)[:size]) is DropReason.PACKET_LEN_ERR


@pytest.mark.parametrize(
    ("advert", "cut"),
    [(V2, 1), (V2, 8), (V2, 12), (V3, 1), (V3, 4)],
    ids=["v2-auth-byte", "v2-auth-field", "v2-address", "v3-byte", "v3-address"],
)
def test_truncated_message(advert: Advert, cut: int) -> None:
    wire = encode(advert, SRC4, GROUP4)
    assert reason_of(wire[:-cut]) is DropReason.PACKET_LEN_ERR


def test_count_larger_than_addresses_present() -> None:
    msg = bytearray(encode(V3, SRC4, GROUP4))
    msg[3] = 3  # claims 3 addresses, carries 2
    assert reason_of(refresh_v3(msg)) is DropReason.PACKET_LEN_ERR


def test_ipv6_needs_16_bytes_per_address() -> None:
    # The same message is complete over IPv4 (two 4-byte addresses would need 16 bytes) but not
    # over IPv6 where one address is 16 bytes: 8 + 16 * 2 > 24.
    msg = bytearray(encode(V3_6, SRC6, GROUP6))
    msg[3] = 2
    assert reason_of(bytes(msg), SRC6, GROUP6) is DropReason.PACKET_LEN_ERR


# --- UNH-IOL 4.2: invalid version ----------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 4, 15])
def test_unknown_version(version: int) -> None:
    msg = bytearray(encode(V3, SRC4, GROUP4))
    msg[0] = version << 4 | 1
    assert reason_of(refresh_v3(msg)) is DropReason.VERSION_ERR


def test_v2_over_ipv6_is_a_version_error() -> None:
    wire = encode(V2, None, None)
    assert reason_of(wire, SRC6, GROUP6) is DropReason.VERSION_ERR


# --- UNH-IOL 4.8: unknown type -------------------------------------------------------------------


@pytest.mark.parametrize("vrrp_type", [0, 2, 15])
def test_unknown_type(vrrp_type: int) -> None:
    msg = bytearray(encode(V2, None, None))
    msg[0] = 0x20 | vrrp_type
    assert reason_of(refresh_v2(msg)) is DropReason.INVALID_TYPE_RCVD


# --- UNH-IOL 4.6: invalid auth type (VRRPv2) ----------------------------------------------------


@pytest.mark.parametrize("auth_type", [3, 254, 255])
def test_unknown_auth_type(auth_type: int) -> None:
    msg = bytearray(encode(V2, None, None))
    msg[4] = auth_type
    assert reason_of(refresh_v2(msg)) is DropReason.INVALID_AUTHTYPE


@pytest.mark.parametrize("auth_type", [0, 1, 2])
def test_known_auth_types_decode(auth_type: int) -> None:
    msg = bytearray(encode(V2, None, None))
    msg[4] = auth_type
    assert decode(refresh_v2(msg), SRC4, GROUP4).auth_type == auth_type


# --- UNH-IOL 4.4: invalid checksum ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("advert", "src", "dst"),
    [(V2, SRC4, GROUP4), (V3, SRC4, GROUP4), (V3, SRC4, PEER4), (V3_6, SRC6, GROUP6)],
    ids=["v2", "v3-group", "v3-unicast", "v3-ipv6"],
)
def test_bad_checksum(advert: Advert, src, dst) -> None:
    msg = bytearray(encode(advert, src, dst))
    msg[7] ^= 0x01
    assert reason_of(bytes(msg), src, dst) is DropReason.CHECKSUM_ERR


def test_v3_checksum_for_another_destination_fails() -> None:
    # Pseudo-header with a unicast peer's address, delivered to a different unicast address.
    wire = encode(V3, SRC4, PEER4)
    assert reason_of(wire, SRC4, IPv4Address("192.0.2.3")) is DropReason.CHECKSUM_ERR


def test_v3_checksum_for_another_source_fails() -> None:
    wire = encode(V3, SRC4, GROUP4)
    assert reason_of(wire, IPv4Address("192.0.2.9"), GROUP4) is DropReason.CHECKSUM_ERR


def test_v2_checksum_covers_auth_data() -> None:
    msg = bytearray(encode(Advert(2, 10, 100, 1, VIPS4, 1, b"secret"), None, None))
    msg[-1] ^= 0x20
    assert reason_of(bytes(msg)) is DropReason.CHECKSUM_ERR


def test_padding_is_outside_the_checksum() -> None:
    wire = encode(V3, SRC4, GROUP4) + b"\x12\x34"
    assert decode(wire, SRC4, GROUP4) == V3


# --- decode is total -----------------------------------------------------------------------------


def test_error_detail_and_message() -> None:
    with pytest.raises(PacketError) as caught:
        decode(b"\x21", SRC4, GROUP4)
    assert caught.value.detail
    assert str(caught.value).startswith("packet_len_err")


def test_bytearray_and_memoryview_input() -> None:
    wire = encode(V3_6, SRC6, GROUP6)
    assert decode(bytearray(wire), SRC6, GROUP6) == V3_6  # type: ignore[arg-type]
    assert decode(memoryview(wire), SRC6, GROUP6) == V3_6  # type: ignore[arg-type]


# --- encode refuses what does not fit ------------------------------------------------------------


@pytest.mark.parametrize(
    ("advert", "src", "dst", "as_v2"),
    [
        (Advert(4, 1, 100, 1, ()), None, None, False),
        (Advert(2, 256, 100, 1, ()), None, None, False),
        (Advert(2, 1, -1, 1, ()), None, None, False),
        (Advert(2, 1, 100, 256, ()), None, None, False),
        (Advert(3, 1, 100, 4096, ()), SRC4, GROUP4, False),
        (Advert(2, 1, 100, 1, (), 256), None, None, False),
        (Advert(2, 1, 100, 1, (), 1, b"123456789"), None, None, False),
        (Advert(2, 1, 100, 1, (IPv6Address("fe80::1"),)), None, None, False),
        (Advert(2, 1, 100, 1, ()), SRC6, GROUP6, False),
        (Advert(3, 1, 100, 100, (), 1, b"x"), SRC4, GROUP4, False),
        (Advert(3, 1, 100, 100, VIPS4), None, None, False),
        (Advert(3, 1, 100, 100, VIPS4), SRC4, None, False),
        (Advert(3, 1, 100, 100, VIPS4), SRC6, GROUP6, False),
        (Advert(3, 1, 100, 100, VIPS4), SRC4, GROUP6, True),
        (Advert(3, 1, 100, 100, V3_6.addresses), None, None, True),
        (Advert(3, 1, 100, 100, VIPS4 * 128), SRC4, GROUP4, False),
    ],
)
def test_encode_rejects(advert: Advert, src, dst, as_v2: bool) -> None:
    with pytest.raises(ValueError):
        encode(advert, src, dst, checksum_as_v2=as_v2)


def test_encode_without_addresses_when_no_pseudo_header_is_needed() -> None:
    assert len(encode(Advert(3, 1, 100, 100, VIPS4), None, None, checksum_as_v2=True)) == 16
    assert len(encode(Advert(2, 1, 100, 1, VIPS4), None, None)) == 24
