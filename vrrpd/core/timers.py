"""VRRP timer arithmetic, in seconds as floats at microsecond precision.

RFC 3768 section 6.1 (VRRPv2) and RFC 5798 / RFC 9568 section 6.1 (VRRPv3). Nothing here rounds
to whole centiseconds: at 10 ms adverts, integer-centisecond skew (as FRR computes it) gives every
backup the same skew and they all promote together.
"""

from __future__ import annotations

from vrrpd.proto.constants import VRRP_VERSION_2

MICROSECOND = 1e-6


def skew_time_s(version: int, priority: int, master_adver_int_cs: int) -> float:
    """Skew_Time: v2 `(256 - Priority) / 256` s; v3 `((256 - Priority) * MAI) / 256` cs."""
    if version == VRRP_VERSION_2:
        return (256 - priority) / 256.0
    return (256 - priority) * master_adver_int_cs / 25600.0


def master_down_interval_s(
    version: int, priority: int, master_adver_int_cs: int, down_timer_adverts: int = 3
) -> float:
    """Master_Down_Interval = N * Master_Adver_Interval + Skew_Time, N = 3 by the RFCs.

    keepalived's `vrrp_down_timer_adverts` makes N configurable; the RFC value is the default.
    For VRRPv2 the interval is the configured one (a mismatch is dropped, RFC 3768 7.1).
    """
    interval_s = master_adver_int_cs / 100.0
    return down_timer_adverts * interval_s + skew_time_s(version, priority, master_adver_int_cs)


def slot_after(now: float, period_s: float, phase_s: float) -> float:
    """The first time after `now` on the grid `phase_s + k * period_s`: a MASTER's advert slot.

    RFC 5798 6.4.3 wants an advert every Advertisement_Interval; an advert that lands on the
    slot grid is at most one interval after the last one and early only when it first joins
    the grid, which only makes a Backup's Master_Down_Timer safer.
    """
    at = now + (phase_s - now) % period_s
    return at if at > now else at + period_s
