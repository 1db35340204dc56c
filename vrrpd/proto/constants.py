"""VRRP wire constants (RFC 3768 section 5, RFC 5798 / RFC 9568 section 5)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Final

IPPROTO_VRRP: Final = 112
VRRP_TTL: Final = 255  # RFC 5798 section 5.1.1.3: TTL / hop limit MUST be 255
VRRP_TOS: Final = 0xC0  # keepalived sends adverts with IPTOS_PREC_INTERNETCONTROL

VRRP_GROUP4: Final = IPv4Address("224.0.0.18")
VRRP_GROUP6: Final = IPv6Address("ff02::12")

VRRP_TYPE_ADVERT: Final = 1
VRRP_VERSION_2: Final = 2
VRRP_VERSION_3: Final = 3

PRIORITY_STOP: Final = 0  # "stop participating": backups take over after Skew_Time
PRIORITY_OWNER: Final = 255  # address owner
PRIORITY_DEFAULT: Final = 100
PRIORITY_MIN_EFFECTIVE: Final = 1
PRIORITY_MAX_EFFECTIVE: Final = 254

VRID_MIN: Final = 1
VRID_MAX: Final = 255

# VRRPv2 (RFC 3768 section 5.3.7): 8-bit Adver Int in seconds.
V2_ADVER_INT_MAX_S: Final = 255
# VRRPv3 (RFC 5798 section 5.2.7): 12-bit Max Adver Int in centiseconds.
V3_ADVER_INT_MAX_CS: Final = 0x0FFF

AUTH_NONE: Final = 0
AUTH_PASS: Final = 1  # RFC 2338 simple text password; keepalived `auth_type PASS`
AUTH_AH: Final = 2  # IPsec AH; keepalived `auth_type AH`
AUTH_DATA_LEN: Final = 8

V2_HEADER_LEN: Final = 8
V3_HEADER_LEN: Final = 8
MAX_ADDRESSES: Final = 255

# RFC 5798 section 7.3: virtual router MAC 00-00-5E-00-01-{VRID} (IPv6: 00-00-5E-00-02-{VRID}).
VMAC_PREFIX4: Final = b"\x00\x00\x5e\x00\x01"
VMAC_PREFIX6: Final = b"\x00\x00\x5e\x00\x02"


def vmac(vrid: int, family: int) -> str:
    """The RFC 5798 section 7.3 virtual MAC for `vrid` as `00:00:5e:00:0X:YY`."""
    prefix = VMAC_PREFIX4 if family == 4 else VMAC_PREFIX6
    return ":".join(f"{b:02x}" for b in prefix + bytes([vrid]))
