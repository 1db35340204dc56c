"""The RFC 1071 Internet checksum and the VRRPv3 pseudo-headers (RFC 5798 5.2.8, RFC 8200 8.1)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from scapy.utils import checksum as scapy_checksum

from vrrpd.proto.checksum import (
    finish,
    fold,
    internet_checksum,
    ones_sum,
    pseudo_sum4,
    pseudo_sum6,
    verifies,
)


def reference_checksum(data: bytes) -> int:
    """RFC 1071 section 4.1, word by word with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def test_rfc1071_section_3_example() -> None:
    # RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2, so the checksum is 220d.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00\x00\x00\x00",
        b"\xff\xff",
        b"\xff\xff\xff\xff",
        b"\x00\x01\xff\xfe",  # sums to exactly 0xffff: -0, checksum 0
        b"\xab",
        b"\x12\x34\x56",
        bytes(range(256)),
    ],
)
def test_matches_reference_and_scapy(data: bytes) -> None:
    assert internet_checksum(data) == reference_checksum(data)
    assert internet_checksum(data) == scapy_checksum(data)


def test_fold_keeps_zero_and_maps_multiples_of_ffff_to_minus_zero() -> None:
    assert fold(0) == 0
    assert fold(0xFFFF) == 0xFFFF
    assert fold(0x1FFFE) == 0xFFFF
    assert fold(0x10000) == 1


def test_verify_a_message_with_its_checksum() -> None:
    data = bytearray(b"\x31\x01\x64\x01\x00\x64\x00\x00\xc0\x00\x02\x01")
    data[6:8] = finish(ones_sum(bytes(data))).to_bytes(2, "big")
    assert verifies(ones_sum(bytes(data)))
    data[0] ^= 0x40
    assert not verifies(ones_sum(bytes(data)))


def test_pseudo_header4_equals_explicit_bytes() -> None:
    src, dst = IPv4Address("192.0.2.1"), IPv4Address("224.0.0.18")
    explicit = src.packed + dst.packed + bytes([0, 112]) + (12).to_bytes(2, "big")
    assert pseudo_sum4(src, dst, 12) == ones_sum(explicit)


def test_pseudo_header6_equals_explicit_bytes() -> None:
    src, dst = IPv6Address("fe80::1"), IPv6Address("ff02::12")
    explicit = src.packed + dst.packed + (24).to_bytes(4, "big") + bytes([0, 0, 0, 112])
    assert pseudo_sum6(src, dst, 24) == ones_sum(explicit)
