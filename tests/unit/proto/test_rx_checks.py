"""Receive checks: RFC 3768 7.1, RFC 5798 / RFC 9568 7.1, keepalived `vrrp_check_packet` order.

UNH-IOL VRRP Operations Test Suite 4.1 (invalid TTL), 4.2 (invalid version), 4.6 (auth type),
4.7 (advertisement interval), plus keepalived's own checks (authentication, unicast/multicast,
owner_ignore_adverts, VIP list, check_unicast_src) and RFC 9568's zero count and interval rules.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

import pytest

from vrrpd.config.model import Auth, AuthType, UnicastPeer
from vrrpd.errors import DropReason
from vrrpd.proto.advert import Advert, Datagram
from vrrpd.proto.checks import CheckResult, RxPolicy, check_advert

SRC = IPv4Address("192.0.2.1")
PEER = IPv4Address("192.0.2.2")
OTHER = IPv4Address("192.0.2.9")
ME = IPv4Address("192.0.2.3")
GROUP = IPv4Address("224.0.0.18")
VIPS = (IPv4Address("192.0.2.100"), IPv4Address("192.0.2.101"))

V3 = Advert(3, 10, 100, 100, VIPS)
V2 = Advert(2, 10, 100, 1, VIPS)
V3_POLICY = RxPolicy(version=3, adver_int=100, auth=None, unicast=False, vips=VIPS)
V2_POLICY = RxPolicy(version=2, adver_int=1, auth=None, unicast=False, vips=VIPS)
PASS = Auth(AuthType.PASS, b"secret")
UNICAST = RxPolicy(
    version=3,
    adver_int=100,
    auth=None,
    unicast=True,
    unicast_peers=(UnicastPeer(SRC), UnicastPeer(PEER, min_ttl=250, max_ttl=254)),
    vips=VIPS,
)


def mcast(ttl: int = 255, src: IPv4Address = SRC) -> Datagram:
    return Datagram(b"", src, GROUP, 2, ttl)


def ucast(ttl: int = 255, src: IPv4Address = SRC) -> Datagram:
    return Datagram(b"", src, ME, 2, ttl)


def accepted(result: CheckResult, *notes: DropReason) -> bool:
    return result.drop is None and result.accepted and result.notes == notes


def dropped(result: CheckResult) -> DropReason | None:
    assert not result.accepted
    assert result.detail
    return result.drop


def test_valid_adverts_are_accepted() -> None:
    assert accepted(check_advert(V3, mcast(), V3_POLICY))
    assert accepted(check_advert(V2, mcast(), V2_POLICY))
    assert accepted(check_advert(V3, ucast(), UNICAST))


def test_priority_zero_is_not_a_receive_error() -> None:
    assert accepted(check_advert(replace(V3, priority=0), mcast(), V3_POLICY))


# --- UNH-IOL 4.1: TTL / Hop Limit -----------------------------------------------------------------


@pytest.mark.parametrize("ttl", [0, 1, 64, 254])
def test_multicast_ttl_must_be_255(ttl: int) -> None:
    assert dropped(check_advert(V3, mcast(ttl), V3_POLICY)) is DropReason.IP_TTL_ERR
    assert dropped(check_advert(V2, mcast(ttl), V2_POLICY)) is DropReason.IP_TTL_ERR


def test_ipv6_hop_limit_must_be_255() -> None:
    v6 = Advert(3, 10, 100, 100, (IPv6Address("fe80::100"),))
    policy = RxPolicy(version=3, adver_int=100, auth=None, unicast=False, vips=v6.addresses)
    dgram = Datagram(b"", IPv6Address("fe80::1"), IPv6Address("ff02::12"), 2, 1)
    assert dropped(check_advert(v6, dgram, policy)) is DropReason.IP_TTL_ERR
    assert accepted(check_advert(v6, dgram._replace(ttl=255), policy))


def test_unicast_ttl_unchecked_without_limits() -> None:
    assert accepted(check_advert(V3, ucast(ttl=3), UNICAST))


@pytest.mark.parametrize(("ttl", "ok"), [(249, False), (250, True), (254, True), (255, False)])
def test_unicast_peer_min_max_ttl(ttl: int, ok: bool) -> None:
    result = check_advert(V3, ucast(ttl, src=PEER), UNICAST)
    assert result.accepted is ok
    if not ok:
        assert result.drop is DropReason.IP_TTL_ERR


# --- UNH-IOL 4.2: version ----------------------------------------------------------------------


def test_version_must_match_configuration() -> None:
    v3_for_v2 = replace(V3, adver_int=1)
    assert dropped(check_advert(v3_for_v2, mcast(), V2_POLICY)) is DropReason.VERSION_ERR
    v2_for_v3 = replace(V2, adver_int=100)
    assert dropped(check_advert(v2_for_v3, mcast(), V3_POLICY)) is DropReason.VERSION_ERR


# --- UNH-IOL 4.6: authentication (VRRPv2, keepalived) --------------------------------------------


@pytest.mark.parametrize(
    ("configured", "received"),
    [(None, 1), (None, 2), (PASS, 0), (PASS, 2), (Auth(AuthType.AH, b""), 1)],
)
def test_auth_type_mismatch(configured: Auth | None, received: int) -> None:
    policy = replace(V2_POLICY, auth=configured)
    advert = replace(V2, auth_type=received, auth_data=b"secret" if received == 1 else b"")
    assert dropped(check_advert(advert, mcast(), policy)) is DropReason.AUTHTYPE_MISMATCH


@pytest.mark.parametrize("password", [b"", b"Secret", b"secret\x01", b"secre"])
def test_wrong_password(password: bytes) -> None:
    policy = replace(V2_POLICY, auth=PASS)
    advert = replace(V2, auth_type=1, auth_data=password)
    assert dropped(check_advert(advert, mcast(), policy)) is DropReason.AUTH_FAILURE


def test_right_password_and_keepalived_truncation_to_8_bytes() -> None:
    advert = replace(V2, auth_type=1, auth_data=b"secret")
    assert accepted(check_advert(advert, mcast(), replace(V2_POLICY, auth=PASS)))
    long_password = Auth(AuthType.PASS, b"longpassword")
    advert = replace(V2, auth_type=1, auth_data=b"longpass")
    assert accepted(check_advert(advert, mcast(), replace(V2_POLICY, auth=long_password)))


def test_ah_type_accepted_when_configured() -> None:
    policy = replace(V2_POLICY, auth=Auth(AuthType.AH, b""))
    assert accepted(check_advert(replace(V2, auth_type=2), mcast(), policy))


def test_unknown_configured_auth_type_fails_when_the_policy_is_built() -> None:
    with pytest.raises(ValueError):
        RxPolicy(version=2, adver_int=1, auth=Auth("MD5", b"x"), unicast=False)  # type: ignore[arg-type]


# --- UNH-IOL 4.7: advertisement interval ----------------------------------------------------------


def test_v2_interval_mismatch_drops() -> None:
    result = check_advert(replace(V2, adver_int=2), mcast(), V2_POLICY)
    assert dropped(result) is DropReason.ADVERT_INTERVAL_ERR
    assert "2 s" in result.detail


def test_v3_interval_mismatch_is_only_noted() -> None:
    result = check_advert(replace(V3, adver_int=200), mcast(), V3_POLICY)
    assert accepted(result, DropReason.ADVERT_INTERVAL_ERR)
    assert "200 cs" in result.detail


def test_v3_interval_zero_drops() -> None:
    # RFC 9568 erratum 8301: the interval is 1..4095.
    result = check_advert(replace(V3, adver_int=0), mcast(), V3_POLICY)
    assert dropped(result) is DropReason.INTERVAL_ZERO
    assert result.notes == (DropReason.ADVERT_INTERVAL_ERR,)


def test_v2_interval_zero_counts_as_a_mismatch_like_keepalived() -> None:
    result = check_advert(replace(V2, adver_int=0), mcast(), V2_POLICY)
    assert dropped(result) is DropReason.ADVERT_INTERVAL_ERR


# --- multicast vs unicast ------------------------------------------------------------------------


def test_unicast_instance_drops_multicast() -> None:
    assert dropped(check_advert(V3, mcast(), UNICAST)) is DropReason.MCAST_UNICAST_MISMATCH


def test_multicast_instance_drops_unicast() -> None:
    assert dropped(check_advert(V3, ucast(), V3_POLICY)) is DropReason.MCAST_UNICAST_MISMATCH


# --- owner ----------------------------------------------------------------------------------------


def test_owner_ignoring_adverts_drops() -> None:
    policy = replace(V3_POLICY, owner=True, owner_ignore_adverts=True)
    assert dropped(check_advert(V3, mcast(), policy)) is DropReason.OWNER_RCVD


def test_owner_without_ignore_accepts() -> None:
    # RFC 9568 erratum 8298: log only; the state machine decides.
    assert accepted(check_advert(V3, mcast(), replace(V3_POLICY, owner=True)))
    # The knob alone does nothing for a non-owner.
    assert accepted(check_advert(V3, mcast(), replace(V3_POLICY, owner_ignore_adverts=True)))


# --- address count and list ----------------------------------------------------------------------


def test_address_count_zero_is_accepted_without_note() -> None:
    # RFC 9568 5.2.5: receivers ignore the field.
    assert accepted(check_advert(replace(V3, addresses=()), mcast(), V3_POLICY))


def test_address_order_does_not_matter() -> None:
    assert accepted(check_advert(replace(V3, addresses=VIPS[::-1]), mcast(), V3_POLICY))


@pytest.mark.parametrize(
    "addresses",
    [VIPS[:1], (*VIPS, IPv4Address("192.0.2.102")), (VIPS[0], OTHER), (VIPS[0], VIPS[0])],
    ids=["fewer", "more", "different", "duplicate"],
)
def test_address_list_mismatch_is_noted_not_dropped(addresses: tuple[IPv4Address, ...]) -> None:
    # keepalived 2.3.3+ accepts (a drop here caused dual masters, keepalived #1603).
    result = check_advert(replace(V3, addresses=addresses), mcast(), V3_POLICY)
    assert accepted(result, DropReason.ADDR_LIST_ERR)
    assert result.detail


def test_interval_and_address_notes_together() -> None:
    advert = replace(V3, adver_int=50, addresses=VIPS[:1])
    result = check_advert(advert, mcast(), V3_POLICY)
    assert accepted(result, DropReason.ADVERT_INTERVAL_ERR, DropReason.ADDR_LIST_ERR)


# --- check_unicast_src ---------------------------------------------------------------------------


def test_unicast_source_must_be_a_peer_when_checked() -> None:
    policy = replace(UNICAST, check_unicast_src=True)
    assert dropped(check_advert(V3, ucast(src=OTHER), policy)) is DropReason.UNICAST_SRC_ERR
    assert accepted(check_advert(V3, ucast(src=SRC), policy))


def test_unicast_source_unchecked_by_default() -> None:
    assert accepted(check_advert(V3, ucast(src=OTHER), UNICAST))


# --- order (keepalived vrrp_check_packet) ------------------------------------------------------


def test_order_ttl_before_version() -> None:
    assert check_advert(V3, mcast(1), V2_POLICY).drop is DropReason.IP_TTL_ERR


def test_order_version_before_auth_and_interval() -> None:
    policy = replace(V2_POLICY, auth=PASS, adver_int=3)
    assert check_advert(V3, mcast(), policy).drop is DropReason.VERSION_ERR


def test_order_auth_before_interval() -> None:
    policy = replace(V2_POLICY, auth=PASS)
    advert = replace(V2, adver_int=5, auth_type=1, auth_data=b"wrong")
    assert check_advert(advert, mcast(), policy).drop is DropReason.AUTH_FAILURE


def test_order_interval_before_destination() -> None:
    result = check_advert(replace(V2, adver_int=5), ucast(), V2_POLICY)
    assert result.drop is DropReason.ADVERT_INTERVAL_ERR


def test_order_destination_before_owner_and_src() -> None:
    policy = replace(UNICAST, owner=True, owner_ignore_adverts=True, check_unicast_src=True)
    assert check_advert(V3, mcast(src=OTHER), policy).drop is DropReason.MCAST_UNICAST_MISMATCH
    assert check_advert(V3, ucast(src=OTHER), policy).drop is DropReason.OWNER_RCVD


def test_notes_survive_a_later_drop() -> None:
    policy = replace(UNICAST, check_unicast_src=True)
    advert = replace(V3, adver_int=50, addresses=VIPS[:1])
    result = check_advert(advert, ucast(src=OTHER), policy)
    assert result.drop is DropReason.UNICAST_SRC_ERR
    assert result.notes == (DropReason.ADVERT_INTERVAL_ERR, DropReason.ADDR_LIST_ERR)


def test_policy_equality_ignores_derived_fields() -> None:
    assert replace(V3_POLICY) == V3_POLICY
    assert V3_POLICY.vip_set == frozenset(VIPS)
    assert V2_POLICY.auth_code == 0
    assert replace(V2_POLICY, auth=PASS).auth_code == 1
