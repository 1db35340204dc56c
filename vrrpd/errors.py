"""One error family for vrrpd, and the drop reasons a received packet can carry.

Layering: this module imports nothing from vrrpd and only the standard library, so every layer
(proto, config, core, io, runtime, cli) may raise and catch these types.

`DropReason` values are keepalived's statistics names (`vrrp_print.c`, the JSON dump's `stats`
object and the Prometheus exporters built on it), so counters read the same as keepalived's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class VrrpdError(Exception):
    """Base of every error vrrpd raises on purpose."""


class DropReason(enum.StrEnum):
    """Why a received datagram was not processed (RFC 3768 / RFC 5798 / RFC 9568 section 7.1).

    The first group are keepalived's own counter names; the rest are counted by vrrpd with names
    in the same style where keepalived only logs.
    """

    PACKET_LEN_ERR = "packet_len_err"
    IP_TTL_ERR = "ip_ttl_err"
    INVALID_TYPE_RCVD = "invalid_type_rcvd"
    ADVERT_INTERVAL_ERR = "advert_interval_err"
    ADDR_LIST_ERR = "addr_list_err"
    INVALID_AUTHTYPE = "invalid_authtype"
    AUTHTYPE_MISMATCH = "authtype_mismatch"
    AUTH_FAILURE = "auth_failure"
    # Counted by vrrpd; keepalived logs these without a dedicated counter.
    VERSION_ERR = "version_err"
    CHECKSUM_ERR = "checksum_err"
    VRID_ERR = "vrid_err"
    UNKNOWN_VRID = "unknown_vrid"
    INTERVAL_ZERO = "interval_zero"
    ADDR_COUNT_ZERO = "addr_count_zero"
    UNICAST_SRC_ERR = "unicast_src_err"
    MCAST_UNICAST_MISMATCH = "mcast_unicast_mismatch"
    OWNER_RCVD = "owner_rcvd"
    OWN_ADVERT = "own_advert"
    NOT_LISTENING = "not_listening"
    QUEUE_FULL = "queue_full"


class PacketError(VrrpdError):
    """A datagram that must be dropped; `reason` names the counter to bump."""

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a configuration file; `line` and `col` count from 1."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration diagnostic: where, what, and optionally how to fix it."""

    location: Location
    message: str
    severity: Severity = Severity.ERROR
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity.value}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(VrrpdError):
    """A configuration that cannot be used; carries every problem found in one pass."""

    def __init__(self, problems: tuple[Problem, ...] | list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid configuration")
