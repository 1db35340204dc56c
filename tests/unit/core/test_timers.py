"""Skew_Time and Master_Down_Interval (RFC 3768 6.1, RFC 5798 / RFC 9568 6.1; UNH-IOL 3.2, 3.3)."""

import pytest

from vrrpd.core.timers import master_down_interval_s, skew_time_s


@pytest.mark.parametrize(
    ("priority", "skew", "mdi"),
    [(254, 2 / 256, 3 + 2 / 256), (200, 56 / 256, 3 + 56 / 256), (100, 156 / 256, 3 + 156 / 256)],
)
def test_v2_uses_whole_second_formula(priority, skew, mdi):
    assert skew_time_s(2, priority, 100) == pytest.approx(skew, abs=1e-12)
    assert master_down_interval_s(2, priority, 100) == pytest.approx(mdi, abs=1e-12)


def test_v3_scales_skew_with_master_adver_interval():
    # 1 s interval, priority 200: 3.21875 s (FRR's show vrrp prints 3210 ms after truncation)
    assert master_down_interval_s(3, 200, 100) == pytest.approx(3.21875, abs=1e-12)
    # 100 ms interval, priority 100: 300 ms + 60.9375 ms
    assert master_down_interval_s(3, 100, 10) == pytest.approx(0.3609375, abs=1e-12)


def test_v3_10ms_skews_differ_at_microsecond_precision():
    """At 10 ms adverts integer-centisecond skew is 0 for every priority; ours must differ."""
    skews = {p: skew_time_s(3, p, 1) for p in (254, 253, 200, 100, 1)}
    assert len(set(skews.values())) == len(skews)
    assert skews[254] == pytest.approx(2 * 0.01 / 256, abs=1e-12)  # 78.125 us
    assert skews[253] - skews[254] == pytest.approx(39.0625e-6, abs=1e-12)


def test_down_timer_adverts_changes_the_multiplier():
    assert master_down_interval_s(3, 100, 10, down_timer_adverts=30) == pytest.approx(
        3.0 + 156 * 10 / 25600, abs=1e-12
    )
