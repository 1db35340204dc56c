"""Watch tracked files and processes (keepalived `track_file`, `vrrp_track_process`).

Files: inotify (through ctypes; the stdlib has no binding) on each file's directory, so that a
file created, rewritten, replaced by rename or deleted is noticed at once. A file is read when a
writer closes it or it is moved or removed (`IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
IN_DELETE`), never on IN_MODIFY: `echo 5 > f` truncates before it writes, and reading in between
would flap the priority through 0 (keepalived 2.2.7 does not flap either). A 2 s safety poll
covers what inotify cannot see (a directory created later, a watch that was dropped); without
inotify the poll runs every 0.5 s.

Processes: a scan of /proc every `PROC_POLL_S` (the proc connector keepalived uses needs the
initial network namespace, so it fails for a daemon in a container or a lab namespace). Each
scan reads /proc/PID/stat (name and state: zombies do not count, as in keepalived) and, only
when a tracker needs it, /proc/PID/cmdline. The scan runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import os
import stat
import struct
from collections.abc import Callable, Iterable, Sequence

import structlog

from vrrpd.config.model import TrackFileSpec, TrackProcessSpec

log = structlog.get_logger("vrrpd.watch")

PROC_POLL_S = 0.25
FILE_SAFETY_POLL_S = 2.0
FILE_POLL_NO_INOTIFY_S = 0.5
FILE_READ_MAX = 4096
COMM_LEN = 15  # /proc/PID/comm keeps TASK_COMM_LEN - 1 characters

IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_IGNORED = 0x8000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
FILE_EVENTS = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF
EVENT_HEADER = struct.Struct("iIII")


# -- track_file ----------------------------------------------------------------------------------


def parse_file_value(text: str) -> int:
    """The number in a tracked file as strtol(3) reads it: leading blanks, a sign, digits;
    anything else, an empty file or a missing one is 0 (keepalived 2.2.7)."""
    s = text.lstrip()
    sign = -1 if s[:1] == "-" else 1
    if s[:1] in ("+", "-"):
        s = s[1:]
    digits = ""
    for ch in s:
        if not "0" <= ch <= "9":
            break
        digits += ch
    return sign * int(digits) if digits else 0


def read_value(path: str) -> int:
    """The value of a tracked file; 0 when it is missing, unreadable or not a regular file
    (opened non-blocking: a FIFO put there by mistake must not stall the event loop)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return 0
        data = os.read(fd, FILE_READ_MAX)
    except OSError:
        return 0
    finally:
        os.close(fd)
    return parse_file_value(data.decode("ascii", "replace"))


def init_file(spec: TrackFileSpec) -> None:
    """`init_file [VALUE] [overwrite]`: write VALUE if the file is missing (or always)."""
    if spec.init_file is None or (os.path.exists(spec.path) and not spec.init_overwrite):
        return
    try:
        with open(spec.path, "w") as fh:
            fh.write(f"{spec.init_file}\n")
    except OSError as exc:
        log.error(f"Unable to initialise track file {spec.path}: {exc.strerror}")


class _Inotify:
    """The three inotify calls, through libc."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

    def add(self, directory: str, mask: int) -> int:
        return int(self._add(self.fd, os.fsencode(directory), mask))

    def read(self) -> list[tuple[int, int, str]]:
        """Pending events as (watch, mask, name)."""
        try:
            buf = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        events, pos = [], 0
        while pos + EVENT_HEADER.size <= len(buf):
            wd, mask, _cookie, length = EVENT_HEADER.unpack_from(buf, pos)
            raw = buf[pos + EVENT_HEADER.size : pos + EVENT_HEADER.size + length]
            events.append((wd, mask, os.fsdecode(raw.rstrip(b"\0"))))
            pos += EVENT_HEADER.size + length
        return events

    def close(self) -> None:
        os.close(self.fd)


class FileWatcher:
    """Calls `report(name, value)` whenever a tracked file's value changes."""

    def __init__(self, specs: Iterable[TrackFileSpec], report: Callable[[str, int], None]):
        self.specs = list(specs)
        self.report = report
        self.values = {s.name: read_value(s.path) for s in self.specs}
        self._ino: _Inotify | None = None
        self._watched: dict[int, str] = {}  # watch descriptor -> directory

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._ino = _Inotify()
        except (OSError, AttributeError) as exc:
            log.warning(
                f"no inotify ({exc}); polling tracked files every {FILE_POLL_NO_INOTIFY_S}s"
            )
            return
        self._add_watches()
        loop.add_reader(self._ino.fd, self._on_events)

    def _add_watches(self) -> None:
        if self._ino is None:
            return
        for d in {os.path.dirname(os.path.abspath(s.path)) for s in self.specs}:
            if d in self._watched.values():
                continue
            wd = self._ino.add(d, FILE_EVENTS)
            if wd >= 0:
                self._watched[wd] = d
            elif ctypes.get_errno() not in (errno.ENOENT, errno.ENOTDIR):
                log.warning(f"cannot watch {d}: {os.strerror(ctypes.get_errno())}")

    def _on_events(self) -> None:
        if self._ino is None:
            return
        changed: set[str] = set()
        for wd, mask, name in self._ino.read():
            if mask & IN_IGNORED:
                self._watched.pop(wd, None)  # directory gone; the safety poll re-adds it
            directory = self._watched.get(wd)
            if directory is not None:
                changed.add(os.path.join(directory, name))
        self.rescan(lambda s: os.path.abspath(s.path) in changed)

    def rescan(self, which: Callable[[TrackFileSpec], bool] = lambda s: True) -> None:
        for spec in self.specs:
            if not which(spec):
                continue
            value = read_value(spec.path)
            if value != self.values[spec.name]:
                self.values[spec.name] = value
                self.report(spec.name, value)

    async def run(self) -> None:
        """The safety poll (or the only one, without inotify)."""
        period = FILE_SAFETY_POLL_S if self._ino is not None else FILE_POLL_NO_INOTIFY_S
        while True:
            await asyncio.sleep(period)
            self._add_watches()
            self.rescan()

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._ino is not None:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self._ino.fd)
            self._ino.close()
            self._ino = None


def watch_files(specs: Iterable[TrackFileSpec], report: Callable[[str, int], None]) -> FileWatcher:
    """A watcher over `specs` after their `init_file` has written them: what the LVS checkers
    (FILE_CHECK) use, the same watch as the VRRP trackers'."""
    specs = list(specs)
    for spec in specs:
        init_file(spec)
    return FileWatcher(specs, report)


# -- vrrp_track_process --------------------------------------------------------------------------


def process_matches(spec: TrackProcessSpec, comm: str, argv: Sequence[str] | None) -> bool:
    """keepalived's exact match (not a regex, unlike pgrep): the process name against
    /proc/PID/comm, or, with parameters, `param_match` or `full_command`, the command line
    (`partial`: the first parameters match; `initial`: the last one may be longer)."""
    if not spec.args and not spec.full_command and spec.param_match == "exact":
        return comm == spec.process[:COMM_LEN]
    if not argv:
        return False
    if spec.full_command and not spec.args and " ".join(argv) == spec.process:
        return True
    if argv[0] != spec.process:
        return False
    params, want = tuple(argv[1:]), spec.args
    if spec.param_match == "partial":
        return params[: len(want)] == want
    if spec.param_match == "initial":
        return "\0".join(params).startswith("\0".join(want))
    return params == want


def _needs_cmdline(spec: TrackProcessSpec) -> bool:
    return bool(spec.args) or spec.full_command or spec.param_match != "exact"


def _stat(pid: str) -> tuple[str, str] | None:
    """(comm, state) from /proc/PID/stat; the name sits between the first '(' and last ')'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read(512).decode(errors="replace")
    except OSError:
        return None
    lo, hi = data.find("("), data.rfind(")")
    if lo < 0 or hi < lo:
        return None
    return data[lo + 1 : hi], data[hi + 2 : hi + 3]


def _cmdline(pid: str) -> tuple[str, ...] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if not data:
        return None  # a kernel thread or a zombie
    return tuple(os.fsdecode(w) for w in data.rstrip(b"\0").split(b"\0"))


def count_processes(specs: Sequence[TrackProcessSpec]) -> dict[str, int]:
    """How many live (non-zombie) processes match each spec: one pass over /proc."""
    counts = {s.name: 0 for s in specs}
    full = any(_needs_cmdline(s) for s in specs)
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError as exc:
        log.error(f"cannot scan /proc: {exc.strerror}")
        return counts
    for pid in entries:
        st = _stat(pid)
        if st is None or st[1] in ("Z", "X"):
            continue
        argv = _cmdline(pid) if full else None
        for spec in specs:
            if process_matches(spec, st[0], argv):
                counts[spec.name] += 1
    return counts
