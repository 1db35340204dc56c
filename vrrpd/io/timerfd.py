"""A precise one-shot timer for the event loop: Linux `timerfd` on CLOCK_MONOTONIC.

asyncio's epoll wait rounds every timeout up to a whole millisecond, so `loop.call_at` fires up to
a millisecond late; VRRP's Master_Down_Interval and Skew_Time are specified in microseconds
(RFC 5798 section 6.1). A timerfd armed with the absolute deadline becomes readable on time, and
epoll wakes for a readable fd at once. `loop.time()` is `time.monotonic()`, the same clock.
Python 3.11 has no `os.timerfd_create`, hence ctypes; without it the runtime uses `call_at`.
"""

from __future__ import annotations

import asyncio
import ctypes
import math
import os
from collections.abc import Callable

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = 0o4000
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class TimerFd:
    """`arm(at)` schedules `callback()` at monotonic time `at`; `arm(None)` disarms."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd: int = fd
        self._loop = loop
        self._callback = callback
        loop.add_reader(fd, self._readable)

    def arm(self, at: float | None) -> None:
        spec = _Itimerspec()
        if at is not None:
            at = max(at, 1e-9)  # an all-zero value would disarm instead
            frac, whole = math.modf(at)
            spec.it_value.tv_sec, spec.it_value.tv_nsec = int(whole), int(frac * 1e9)
        if self._libc.timerfd_settime(self.fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def _readable(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            return  # re-armed between expiry and this read
        self._callback()

    def close(self) -> None:
        self._loop.remove_reader(self.fd)
        os.close(self.fd)
