"""The runtime dates a received advert by the kernel's receive timestamp (RFC 5798 6.4.2: the
Master_Down_Timer restarts when the advert arrives), clamped so engine time never goes back."""

from __future__ import annotations

import time
from ipaddress import IPv4Address

from vrrpd.config.model import Config
from vrrpd.proto.advert import Datagram
from vrrpd.runtime.daemon import MAX_RX_AGE_S, Runtime

SRC, DST = IPv4Address("192.0.2.11"), IPv4Address("224.0.0.18")


def dgram(rx_at: float) -> Datagram:
    return Datagram(b"", SRC, DST, 2, 255, rx_at=rx_at)


def offset_now() -> tuple[float, float]:
    """A loop time `now` and the realtime that corresponds to it."""
    return 1000.0, time.time()


def test_arrival_uses_the_kernel_timestamp_on_the_loop_clock() -> None:
    rt = Runtime(Config(), detail=False)
    now, real = offset_now()
    got = rt._arrival(dgram(real - 0.004), now)
    assert now - 0.0045 < got < now - 0.0035


def test_arrival_without_timestamp_or_after_a_clock_step_is_now() -> None:
    rt = Runtime(Config(), detail=False)
    now, real = offset_now()
    assert rt._arrival(dgram(0.0), now) == now
    assert rt._arrival(dgram(real - MAX_RX_AGE_S - 5), now + 1) == now + 1
    assert rt._arrival(dgram(real + 60), now + 2) == now + 2  # never in the future


def test_arrival_never_goes_back_in_time() -> None:
    rt = Runtime(Config(), detail=False)
    now, real = offset_now()
    first = rt._arrival(dgram(real - 0.001), now)
    second = rt._arrival(dgram(real - 0.003), now)  # read later, stamped earlier
    assert second == first
