"""Encoding and decoding of VRRP advertisements (the message after the IP header).

RFC 3768 section 5.3 (VRRPv2), RFC 5798 / RFC 9568 section 5.2 (VRRPv3), with keepalived's
choices (keepalived `vrrp.c` builders and `vrrp_check_packet`): VRRPv2 always carries the 8-byte
authentication field, VRRPv3 over IPv4 is accepted with or without the pseudo-header.

`decode` is total: whatever the bytes, it returns an `Advert` or raises `PacketError` with the
keepalived counter name of the first structural problem. Semantic checks that depend on an
instance's configuration (TTL, intervals, authentication, addresses) live in `checks.py`.
"""

from __future__ import annotations

import functools
from ipaddress import IPv4Address, IPv6Address
from struct import Struct

from vrrpd.errors import DropReason, PacketError
from vrrpd.proto.advert import Advert, IPAddress
from vrrpd.proto.auth import auth_data_field
from vrrpd.proto.checksum import finish, ones_sum, pseudo_sum4, pseudo_sum6, verifies
from vrrpd.proto.constants import (
    AUTH_AH,
    AUTH_DATA_LEN,
    AUTH_NONE,
    MAX_ADDRESSES,
    V2_ADVER_INT_MAX_S,
    V2_HEADER_LEN,
    V3_ADVER_INT_MAX_CS,
    V3_HEADER_LEN,
    VRRP_GROUP4,
    VRRP_TYPE_ADVERT,
    VRRP_VERSION_2,
    VRRP_VERSION_3,
)

# Version|Type, VRID, Priority, Count IPvX Addr, then one 16-bit word that is Auth Type|Adver Int
# in VRRPv2 and Rsvd|Max Adver Int in VRRPv3, then the checksum. Same 8 bytes in both versions.
_HEADER = Struct("!BBBBHH")
_CHECKSUM = Struct("!H")
_CHECKSUM_OFFSET = 6
_V3_INTERVAL_MASK = 0x0FFF
_NO_AUTH_FIELD = b""


@functools.cache
def _addr4_struct(count: int) -> Struct:
    """A compiled `!NI` for N IPv4 addresses (cached: N is at most 255)."""
    return Struct(f"!{count}I")


def _byte(name: str, value: int, top: int = 0xFF) -> None:
    if not 0 <= value <= top:
        raise ValueError(f"{name} {value} is outside 0..{top}")


def _check_common(advert: Advert) -> None:
    """Reject field values that do not fit the wire format (a bug in the caller, not the peer)."""
    _byte("vrid", advert.vrid)
    _byte("priority", advert.priority)
    if len(advert.addresses) > MAX_ADDRESSES:
        raise ValueError(f"{len(advert.addresses)} addresses, at most {MAX_ADDRESSES} fit")


def _is_v6(advert: Advert, src: IPAddress | None, dst: IPAddress | None) -> bool:
    """The address family of a VRRPv3 message; every address given must agree."""
    known = [a for a in (src, dst) if a is not None]
    families = {isinstance(a, IPv6Address) for a in (*known, *advert.addresses)}
    if len(families) > 1:
        raise ValueError("mixed IPv4 and IPv6 among src, dst and the advert's addresses")
    return families == {True}


def encode(
    advert: Advert,
    src: IPAddress | None,
    dst: IPAddress | None,
    *,
    checksum_as_v2: bool = False,
) -> bytes:
    """The VRRP message for `advert`, checksum included, without the IP header.

    VRRPv2 (RFC 3768 5.3.8): checksum over the message including the 8-byte auth field.
    VRRPv3 (RFC 5798 5.2.8): over IPv4 the pseudo-header {src, dst, 0, 112, len} is summed with
    `dst` the real destination (group or unicast peer) unless `checksum_as_v2` (RFC 9568 5.2.8,
    keepalived `v3_checksum_as_v2`); over IPv6 the RFC 8200 pseudo-header is always used.
    `src` and `dst` may be None only when no pseudo-header is needed; field values outside the
    wire ranges raise ValueError.
    """
    _check_common(advert)
    if advert.version == VRRP_VERSION_2:
        if isinstance(src, IPv6Address) or isinstance(dst, IPv6Address):
            raise ValueError("VRRPv2 runs over IPv4 only (RFC 3768)")
        return _encode_v2(advert)
    if advert.version == VRRP_VERSION_3:
        return _encode_v3(advert, src, dst, checksum_as_v2)
    raise ValueError(f"VRRP version {advert.version} is neither 2 nor 3")


def _with_checksum(msg: bytearray, pseudo: int) -> bytes:
    """Fill the checksum field of `msg` (currently zero) given the pseudo-header's sum."""
    _CHECKSUM.pack_into(msg, _CHECKSUM_OFFSET, finish(ones_sum(msg), pseudo))
    return bytes(msg)


def _encode_v2(advert: Advert) -> bytes:
    """RFC 3768 section 5.1: IPv4 addresses, then the 8-byte authentication data."""
    _byte("adver_int", advert.adver_int, V2_ADVER_INT_MAX_S)
    _byte("auth_type", advert.auth_type)
    if len(advert.auth_data) > AUTH_DATA_LEN:
        raise ValueError(f"auth_data is {len(advert.auth_data)} bytes, the field holds 8")
    if not all(isinstance(a, IPv4Address) for a in advert.addresses):
        raise ValueError("VRRPv2 carries IPv4 addresses only")
    msg = bytearray(
        _HEADER.pack(
            VRRP_VERSION_2 << 4 | VRRP_TYPE_ADVERT,
            advert.vrid,
            advert.priority,
            len(advert.addresses),
            advert.auth_type << 8 | advert.adver_int,
            0,
        )
    )
    for address in advert.addresses:
        msg += address.packed
    msg += auth_data_field(advert.auth_data)
    return _with_checksum(msg, 0)


def _encode_v3(advert: Advert, src: IPAddress | None, dst: IPAddress | None, as_v2: bool) -> bytes:
    """RFC 5798 / RFC 9568 section 5.2: reserved bits zero, no authentication."""
    _byte("adver_int", advert.adver_int, V3_ADVER_INT_MAX_CS)
    if advert.auth_type != AUTH_NONE or advert.auth_data:
        raise ValueError("VRRPv3 has no authentication (RFC 5798 section 9)")
    v6 = _is_v6(advert, src, dst)
    msg = bytearray(
        _HEADER.pack(
            VRRP_VERSION_3 << 4 | VRRP_TYPE_ADVERT,
            advert.vrid,
            advert.priority,
            len(advert.addresses),
            advert.adver_int,
            0,
        )
    )
    for address in advert.addresses:
        msg += address.packed
    return _with_checksum(msg, _v3_pseudo_sum(src, dst, len(msg), v6 or not as_v2))


def _v3_pseudo_sum(src: IPAddress | None, dst: IPAddress | None, length: int, used: bool) -> int:
    """The pseudo-header's share of a VRRPv3 checksum; 0 when the form has none (RFC 9568)."""
    if not used:
        return 0
    if isinstance(src, IPv4Address) and isinstance(dst, IPv4Address):
        return pseudo_sum4(src, dst, length)
    if isinstance(src, IPv6Address) and isinstance(dst, IPv6Address):
        return pseudo_sum6(src, dst, length)
    raise ValueError("the VRRPv3 pseudo-header needs src and dst of one family")


def decode(data: bytes, src: IPAddress, dst: IPAddress) -> Advert:
    """Parse one VRRP message received from `src` for `dst`, or raise PacketError.

    Structural checks only, in keepalived's order where it has one (RFC 3768 / RFC 5798 7.1):
    length (`packet_len_err`; trailing bytes such as Ethernet padding are ignored), version
    (`version_err`; VRRPv2 is IPv4 only), type (`invalid_type_rcvd`), VRRPv2 auth type
    (`invalid_authtype`), checksum (`checksum_err`). The reserved bits of VRRPv3 are ignored
    (RFC 5798 5.2.6). A zero address count or interval is a receive check, not a decode error.
    The auth data comes back without its NUL padding, so `decode(encode(a)) == a`.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    size = len(data)
    if size < V2_HEADER_LEN:
        raise PacketError(DropReason.PACKET_LEN_ERR, f"{size} bytes, shorter than the header")
    ver_type, vrid, priority, count, word, _ = _HEADER.unpack_from(data)
    version = ver_type >> 4
    if version not in (VRRP_VERSION_2, VRRP_VERSION_3):
        raise PacketError(DropReason.VERSION_ERR, f"version {version}")
    if ver_type & 0x0F != VRRP_TYPE_ADVERT:
        raise PacketError(DropReason.INVALID_TYPE_RCVD, f"type {ver_type & 0x0F}")
    v6 = isinstance(src, IPv6Address)
    if version == VRRP_VERSION_2:
        if v6:
            raise PacketError(DropReason.VERSION_ERR, "VRRPv2 over IPv6")
        expected = V2_HEADER_LEN + 4 * count + AUTH_DATA_LEN
    else:
        expected = V3_HEADER_LEN + (16 if v6 else 4) * count
    if size < expected:
        raise PacketError(
            DropReason.PACKET_LEN_ERR, f"{size} bytes, {count} addresses need {expected}"
        )
    msg = data if size == expected else data[:expected]
    if version == VRRP_VERSION_2:
        return _decode_v2(msg, vrid, priority, count, word)
    return _decode_v3(msg, src, dst, (vrid, priority, count, word & _V3_INTERVAL_MASK))


def _addresses4(msg: bytes, count: int) -> tuple[IPAddress, ...]:
    return tuple(map(IPv4Address, _addr4_struct(count).unpack_from(msg, V2_HEADER_LEN)))


def _addresses6(msg: bytes, count: int) -> tuple[IPAddress, ...]:
    end = V3_HEADER_LEN + 16 * count
    return tuple(IPv6Address(msg[i : i + 16]) for i in range(V3_HEADER_LEN, end, 16))


def _decode_v2(msg: bytes, vrid: int, priority: int, count: int, word: int) -> Advert:
    """RFC 3768 sections 5.3.6-5.3.8; auth types as in RFC 2338 (0, 1 PASS, 2 AH)."""
    auth_type = word >> 8
    if auth_type > AUTH_AH:
        raise PacketError(DropReason.INVALID_AUTHTYPE, f"auth type {auth_type}")
    if not verifies(ones_sum(msg)):
        raise PacketError(DropReason.CHECKSUM_ERR, _checksum_detail(msg))
    return Advert(
        version=VRRP_VERSION_2,
        vrid=vrid,
        priority=priority,
        adver_int=word & 0xFF,
        addresses=_addresses4(msg, count),
        auth_type=auth_type,
        auth_data=msg[-AUTH_DATA_LEN:].rstrip(b"\x00"),
    )


def _decode_v3(
    msg: bytes, src: IPAddress, dst: IPAddress, fields: tuple[int, int, int, int]
) -> Advert:
    """RFC 5798 / RFC 9568 sections 5.2.1-5.2.9."""
    vrid, priority, count, adver_int = fields
    if isinstance(src, IPv6Address):
        ok = _v3_checksum_ok6(msg, src, dst)
        addresses = _addresses6(msg, count)
    else:
        ok = _v3_checksum_ok4(msg, src, dst)
        addresses = _addresses4(msg, count)
    if not ok:
        raise PacketError(DropReason.CHECKSUM_ERR, _checksum_detail(msg))
    return Advert(
        version=VRRP_VERSION_3,
        vrid=vrid,
        priority=priority,
        adver_int=adver_int,
        addresses=addresses,
        auth_type=AUTH_NONE,
        auth_data=_NO_AUTH_FIELD,
    )


def _v3_checksum_ok6(msg: bytes, src: IPv6Address, dst: IPAddress) -> bool:
    """RFC 5798 5.2.8 with the RFC 8200 pseudo-header (the only IPv6 form)."""
    if not isinstance(dst, IPv6Address):
        return False
    return verifies(ones_sum(msg), pseudo_sum6(src, dst, len(msg)))


def _v3_checksum_ok4(msg: bytes, src: IPv4Address, dst: IPAddress) -> bool:
    """Accept every IPv4 form a peer may send.

    RFC 5798 (pseudo-header with the real destination, keepalived's default), RFC 9568 (no
    pseudo-header; keepalived `v3_checksum_as_v2`, Cisco, Juniper, Arista) and keepalived before
    1.3.6, which put 224.0.0.18 in the pseudo-header of unicast adverts too.
    """
    body = ones_sum(msg)
    if verifies(body):
        return True
    if not isinstance(dst, IPv4Address):
        return False
    if verifies(body, pseudo_sum4(src, dst, len(msg))):
        return True
    return dst != VRRP_GROUP4 and verifies(body, pseudo_sum4(src, VRRP_GROUP4, len(msg)))


def _checksum_detail(msg: bytes) -> str:
    (received,) = _CHECKSUM.unpack_from(msg, _CHECKSUM_OFFSET)
    return f"checksum 0x{received:04x} does not verify"
