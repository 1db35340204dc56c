"""The Internet checksum (RFC 1071) and the pseudo-headers VRRP puts under it.

RFC 3768 section 5.3.8 (VRRPv2: message only), RFC 5798 section 5.2.8 (VRRPv3: IPv4 pseudo-header
of RFC 791 / IPv6 pseudo-header of RFC 8200 section 8.1) and RFC 9568 section 5.2.8 (VRRPv3 over
IPv4 without a pseudo-header).

Why the arithmetic works: 2**16 is 1 modulo 0xFFFF, so the one's complement sum of a byte string's
16-bit words is the big-endian integer of the string modulo 0xFFFF, with one twist: a non-zero
input never sums to +0 in one's complement, it sums to -0 (0xFFFF). `int.from_bytes` plus one `%`
does in C what a Python loop over words would do slowly, and an IP address's integer value is
already the concatenation of its words.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from vrrpd.proto.constants import IPPROTO_VRRP

_MOD = 0xFFFF


def fold(total: int) -> int:
    """Reduce a non-negative sum of 16-bit words to its 16-bit one's complement sum.

    Zero stays 0 (only an all-zero input sums to +0); any other multiple of 0xFFFF is 0xFFFF,
    exactly what RFC 1071's end-around carry produces.
    """
    rest = total % _MOD
    if rest == 0 and total:
        return _MOD
    return rest


def ones_sum(data: bytes | bytearray) -> int:
    """The RFC 1071 one's complement sum of `data`'s 16-bit words (odd length: pad with a zero)."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    return fold(int.from_bytes(data, "big"))


def internet_checksum(data: bytes | bytearray) -> int:
    """RFC 1071 checksum of `data`: the complement of its one's complement sum."""
    return _MOD - ones_sum(data)


def finish(*sums: int) -> int:
    """The checksum field value for a message whose parts have the one's complement `sums`."""
    return _MOD - fold(sum(sums))


def verifies(*sums: int) -> bool:
    """True when parts that include the received checksum field add up to -0 (RFC 1071 4.1)."""
    return fold(sum(sums)) == _MOD


def pseudo_sum4(src: IPv4Address, dst: IPv4Address, length: int) -> int:
    """One's complement sum of the IPv4 pseudo-header {src, dst, 0, 112, len} (RFC 5798 5.2.8)."""
    return fold(int(src) + int(dst) + IPPROTO_VRRP + length)


def pseudo_sum6(src: IPv6Address, dst: IPv6Address, length: int) -> int:
    """One's complement sum of the RFC 8200 section 8.1 pseudo-header for next header 112.

    The 32-bit upper-layer length and the next header byte are words like any other; the zero
    padding adds nothing.
    """
    return fold(int(src) + int(dst) + length + IPPROTO_VRRP)
