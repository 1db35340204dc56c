"""VRRPv2 authentication data (RFC 2338 section 5.3.6 / 10, kept by keepalived; RFC 3768 5.3.6).

RFC 3768 removed authentication, but keepalived still sends and checks `auth_type PASS` (a clear
text password of up to 8 bytes) and `auth_type AH`, so a compatible daemon must too.

The layer rule (proto sits below config) keeps `vrrpd.config.model` out of this package, so the
config types are described here structurally: `config.model.Auth` and `config.model.UnicastPeer`
satisfy these protocols as they are.
"""

from __future__ import annotations

import hmac
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from vrrpd.proto.constants import AUTH_AH, AUTH_DATA_LEN, AUTH_NONE, AUTH_PASS

_NUL_PAD = b"\x00" * AUTH_DATA_LEN

# keepalived `auth_type` keyword -> wire code (RFC 2338 section 5.3.6).
_AUTH_CODES = {"PASS": AUTH_PASS, "AH": AUTH_AH}


class AuthLike(Protocol):
    """What the receive checks need from `config.model.Auth`."""

    @property
    def type(self) -> str: ...

    @property
    def password(self) -> bytes: ...


class UnicastPeerLike(Protocol):
    """What the receive checks need from `config.model.UnicastPeer`."""

    @property
    def address(self) -> IPv4Address | IPv6Address: ...

    @property
    def min_ttl(self) -> int | None: ...

    @property
    def max_ttl(self) -> int | None: ...


def auth_data_field(data: bytes) -> bytes:
    """The 8-byte wire field for `data`: truncated to 8 bytes and NUL padded (keepalived)."""
    return (data[:AUTH_DATA_LEN] + _NUL_PAD)[:AUTH_DATA_LEN]


def auth_type_code(auth: AuthLike | None) -> int:
    """The wire auth type an instance configured with `auth` sends and expects."""
    if auth is None:
        return AUTH_NONE
    code = _AUTH_CODES.get(str(auth.type))
    if code is None:
        # Never fall back to "no authentication": that would silently accept anything.
        raise ValueError(f"unknown auth_type {auth.type!r}")
    return code


def password_matches(received: bytes, password: bytes) -> bool:
    """Constant-time comparison of the 8-byte fields, as keepalived does for `auth_type PASS`."""
    return hmac.compare_digest(auth_data_field(received), auth_data_field(password))
