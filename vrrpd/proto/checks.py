"""Receive checks of a decoded advert against one instance's configuration.

RFC 3768 section 7.1 (VRRPv2), RFC 5798 / RFC 9568 section 7.1 (VRRPv3), in the order of
keepalived's `vrrp_check_packet` (`vrrp.c`) so that the counter a bad packet bumps is the one
keepalived would bump. Structural checks (length, version and type bytes, checksum) happened in
`packet.decode`; finding the instance by VRID is the core's job.

A check either drops the advert (`CheckResult.drop`) or accepts it, possibly with notes: problems
keepalived counts and logs but does not act on (a VRRPv3 interval mismatch, an address list that
differs from ours).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from vrrpd.errors import DropReason
from vrrpd.proto.advert import Advert, Datagram, IPAddress
from vrrpd.proto.auth import AuthLike, UnicastPeerLike, auth_type_code, password_matches
from vrrpd.proto.constants import AUTH_PASS, VRRP_TTL, VRRP_VERSION_2

_Failure: TypeAlias = tuple[DropReason, str] | None


@dataclass(frozen=True, slots=True)
class RxPolicy:
    """What one instance expects of the adverts it receives; built by the core from config.

    `adver_int` is the configured interval in wire units (VRRPv2 seconds, VRRPv3 centiseconds).
    `auth` is the VRRPv2 `authentication {}` block (a `config.model.Auth`). `vips` are the
    configured addresses that go into our own adverts. `owner` means priority 255.
    """

    version: int
    adver_int: int
    auth: AuthLike | None
    unicast: bool
    unicast_peers: tuple[UnicastPeerLike, ...] = ()
    check_unicast_src: bool = False
    vips: tuple[IPAddress, ...] = ()
    owner: bool = False
    owner_ignore_adverts: bool = False
    # Derived once here rather than per packet; an unknown auth type fails at build time.
    auth_code: int = field(init=False, repr=False, compare=False)
    vip_set: frozenset[IPAddress] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "auth_code", auth_type_code(self.auth))
        object.__setattr__(self, "vip_set", frozenset(self.vips))


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict on one advert: `drop` None means accept.

    `notes` are reasons counted and logged even though the advert goes on to the state machine
    (`advert_interval_err` for a VRRPv3 interval mismatch, `addr_list_err` for a differing
    address list); on a drop they hold what was noted before the failing check, as keepalived
    bumps counters in check order. `detail` says what was wrong, for the log line.
    """

    drop: DropReason | None
    notes: tuple[DropReason, ...] = ()
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.drop is None


def check_advert(advert: Advert, dgram: Datagram, policy: RxPolicy) -> CheckResult:
    """Apply the RFC 3768 / RFC 5798 / RFC 9568 section 7.1 checks in keepalived's order.

    TTL, version, VRRPv2 authentication, interval, multicast vs unicast destination, owner
    ignoring adverts, address list (a note), unicast source.
    """
    notes: list[tuple[DropReason, str]] = []
    failure = (
        _check_ttl(dgram, policy)
        or _check_version(advert, policy)
        or _check_auth(advert, policy)
        or _check_interval(advert, policy, notes)
        or _check_destination(dgram, policy)
        or _check_owner(policy)
    )
    if failure is None:
        _check_addresses(advert, policy, notes)
        failure = _check_unicast_src(dgram, policy)
    reasons = tuple(reason for reason, _ in notes)
    if failure is not None:
        return CheckResult(failure[0], reasons, failure[1])
    return CheckResult(None, reasons, "; ".join(detail for _, detail in notes))


def _find_peer(dgram: Datagram, policy: RxPolicy) -> UnicastPeerLike | None:
    for peer in policy.unicast_peers:
        if peer.address == dgram.src:
            return peer
    return None


def _check_ttl(dgram: Datagram, policy: RxPolicy) -> _Failure:
    """TTL / Hop Limit MUST be 255 (RFC 5798 7.1); unicast: only `min_ttl`/`max_ttl` if set."""
    ttl = dgram.ttl
    if not policy.unicast:
        if ttl != VRRP_TTL:
            return DropReason.IP_TTL_ERR, f"TTL {ttl}, expected {VRRP_TTL}"
        return None
    peer = _find_peer(dgram, policy)
    if peer is None:
        return None
    if peer.min_ttl is not None and ttl < peer.min_ttl:
        return DropReason.IP_TTL_ERR, f"TTL {ttl} below min_ttl {peer.min_ttl} of {dgram.src}"
    if peer.max_ttl is not None and ttl > peer.max_ttl:
        return DropReason.IP_TTL_ERR, f"TTL {ttl} above max_ttl {peer.max_ttl} of {dgram.src}"
    return None


def _check_version(advert: Advert, policy: RxPolicy) -> _Failure:
    """A VRRPv2 instance rejects VRRPv3 adverts and vice versa (keepalived `version`)."""
    if advert.version != policy.version:
        return DropReason.VERSION_ERR, f"version {advert.version}, configured {policy.version}"
    return None


def _check_auth(advert: Advert, policy: RxPolicy) -> _Failure:
    """VRRPv2 auth type then password (RFC 2338 5.3.6, 10; keepalived constant-time compare)."""
    if advert.version != VRRP_VERSION_2:
        return None
    if advert.auth_type != policy.auth_code:
        return (
            DropReason.AUTHTYPE_MISMATCH,
            f"auth type {advert.auth_type}, configured {policy.auth_code}",
        )
    auth = policy.auth
    if (
        policy.auth_code == AUTH_PASS
        and auth is not None
        and not password_matches(advert.auth_data, auth.password)
    ):
        return DropReason.AUTH_FAILURE, "password mismatch"
    return None


def _check_interval(
    advert: Advert, policy: RxPolicy, notes: list[tuple[DropReason, str]]
) -> _Failure:
    """RFC 3768 7.1: a VRRPv2 mismatch MUST drop. RFC 5798 7.1: VRRPv3 only logs (the Backup
    adopts the Active's interval). RFC 9568 erratum 8301: an interval of zero is rejected."""
    if advert.adver_int != policy.adver_int:
        unit = "s" if advert.version == VRRP_VERSION_2 else "cs"
        detail = f"advert interval {advert.adver_int} {unit}, mine {policy.adver_int} {unit}"
        if advert.version == VRRP_VERSION_2:
            return DropReason.ADVERT_INTERVAL_ERR, detail
        notes.append((DropReason.ADVERT_INTERVAL_ERR, detail))
    if advert.adver_int == 0:
        return DropReason.INTERVAL_ZERO, "advert interval 0"
    return None


def _check_destination(dgram: Datagram, policy: RxPolicy) -> _Failure:
    """Multicast destination iff the instance is not unicast (keepalived vrrp_check_packet)."""
    multicast = dgram.dst.is_multicast
    if policy.unicast and multicast:
        return DropReason.MCAST_UNICAST_MISMATCH, f"expected unicast, got multicast to {dgram.dst}"
    if not policy.unicast and not multicast:
        return DropReason.MCAST_UNICAST_MISMATCH, f"expected multicast, got unicast to {dgram.dst}"
    return None


def _check_owner(policy: RxPolicy) -> _Failure:
    """The address owner drops adverts only with `owner_ignore_adverts` (RFC 9568 erratum 8298
    turned RFC 5798's MUST discard into log only)."""
    if policy.owner and policy.owner_ignore_adverts:
        return DropReason.OWNER_RCVD, "address owner ignores adverts"
    return None


def _check_addresses(advert: Advert, policy: RxPolicy, notes: list[tuple[DropReason, str]]) -> None:
    """Address list vs config: noted, never dropped (keepalived 2.3.3+, RFC 5798 7.1 MAY).

    A count of zero carries no list to compare (RFC 9568 section 5.2.5: ignore the field).
    """
    received = advert.addresses
    if not received:
        return
    if len(received) != len(policy.vips):
        detail = f"expected {len(policy.vips)} VIPs but received {len(received)}"
    elif frozenset(received) != policy.vip_set:
        missing = sorted(str(a) for a in policy.vip_set.difference(received))
        detail = f"configured VIPs not in the advert: {', '.join(missing)}"
    else:
        return
    notes.append((DropReason.ADDR_LIST_ERR, detail))


def _check_unicast_src(dgram: Datagram, policy: RxPolicy) -> _Failure:
    """keepalived `check_unicast_src`: the source must be one of the `unicast_peer` addresses."""
    if policy.unicast and policy.check_unicast_src and _find_peer(dgram, policy) is None:
        return DropReason.UNICAST_SRC_ERR, f"{dgram.src} is not a unicast_peer"
    return None
