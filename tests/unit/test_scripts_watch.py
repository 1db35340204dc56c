"""io/watch.py: file values as keepalived reads them, inotify on real files, process matching
and counting against the real /proc (a copied `sleep` with a unique name)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vrrpd.config.model import TrackFileSpec, TrackProcessSpec
from vrrpd.io.watch import (
    FileWatcher,
    count_processes,
    init_file,
    parse_file_value,
    process_matches,
    read_value,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5\n", 5),
        (" 7 \n", 7),  # keepalived 2.2.7: leading blanks skipped
        ("-60", -60),
        ("+3", 3),
        ("12abc", 12),  # strtol stops at the first non-digit
        ("abc", 0),
        ("", 0),
        ("-", 0),
        ("\n\n42", 42),
        ("99999999999", 99999999999),
    ],
)
def test_parse_file_value(text, value):
    assert parse_file_value(text) == value


def test_read_value_of_a_missing_file_a_fifo_or_a_directory_is_zero(tmp_path: Path):
    assert read_value(str(tmp_path / "nothing")) == 0
    os.mkfifo(tmp_path / "fifo")
    assert read_value(str(tmp_path / "fifo")) == 0  # and it returns at once
    assert read_value(str(tmp_path)) == 0


def test_init_file_writes_only_when_missing_unless_overwrite(tmp_path: Path):
    path = tmp_path / "f"
    init_file(TrackFileSpec("f", str(path), init_file=3))
    assert path.read_text() == "3\n"
    path.write_text("9\n")
    init_file(TrackFileSpec("f", str(path), init_file=3))
    assert path.read_text() == "9\n"
    init_file(TrackFileSpec("f", str(path), init_file=-2, init_overwrite=True))
    assert path.read_text() == "-2\n"
    init_file(TrackFileSpec("f", str(path)))  # no init_file: untouched
    assert path.read_text() == "-2\n"


def test_file_watcher_follows_writes_renames_and_deletes_without_flapping(tmp_path: Path):
    path = tmp_path / "f1"
    path.write_text("1\n")
    seen: list[tuple[str, int]] = []

    async def until(n: int) -> None:
        for _ in range(500):
            if len(seen) >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {seen}")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        watcher = FileWatcher([TrackFileSpec("f1", str(path))], lambda n, v: seen.append((n, v)))
        assert watcher.values == {"f1": 1}
        watcher.start(loop)
        try:
            path.write_text("5\n")  # truncate, write, close: one report, never 0 in between
            await until(1)
            new = tmp_path / "f1.tmp"
            new.write_text("-4\n")
            new.rename(path)
            await until(2)
            path.unlink()
            await until(3)
            (tmp_path / "other").write_text("8\n")  # another file in the directory
            path.write_text("0\n")  # same value as "missing": no report
            path.write_text("2\n")
            await until(4)
        finally:
            watcher.close(loop)

    asyncio.run(main())
    assert seen == [("f1", 5), ("f1", -4), ("f1", 0), ("f1", 2)]


def proc(process: str, *args: str, match: str = "exact", full: bool = False) -> TrackProcessSpec:
    return TrackProcessSpec("p", process, args, full, match)


@pytest.mark.parametrize(
    ("spec", "comm", "argv", "expected"),
    [
        (proc("haproxy"), "haproxy", None, True),
        (proc("haproxy"), "haproxy-sys", None, False),  # exact, not pgrep's regex
        (proc("ssh"), "sshd", None, False),
        (proc("a-very-long-process-name"), "a-very-long-pro", None, True),  # comm: 15 chars
        (proc("nginx", "-g"), "nginx", ("nginx", "-g"), True),
        (proc("nginx", "-g"), "nginx", ("nginx", "-g", "daemon off;"), False),
        (proc("nginx", "-g", match="partial"), "nginx", ("nginx", "-g", "daemon off;"), True),
        (proc("nginx", "-g", "dae", match="partial"), "nginx", ("nginx", "-g", "daemon"), False),
        (proc("nginx", "-g", "dae", match="initial"), "nginx", ("nginx", "-g", "daemon"), True),
        (proc("nginx", "-x", match="initial"), "nginx", ("nginx", "-g", "daemon"), False),
        (proc("nginx", match="partial"), "nginx", ("nginx", "-g"), True),
        (proc("/usr/sbin/nginx", full=True), "nginx", ("/usr/sbin/nginx",), True),
        (proc("/usr/sbin/nginx", full=True), "nginx", ("nginx",), False),
        (proc("sleep 600", full=True), "sleep", ("sleep", "600"), True),
        (proc("nginx", "-g"), "nginx", None, False),  # a kernel thread has no cmdline
    ],
)
def test_process_matches(spec, comm, argv, expected):
    assert process_matches(spec, comm, argv) is expected


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / ("w" + uuid.uuid4().hex[:12])
    shutil.copy("/bin/sleep", path)
    yield path


def test_count_processes_by_name_and_command_line_ignores_zombies(sleeper: Path):
    by_name = TrackProcessSpec("by_name", sleeper.name)
    by_args = TrackProcessSpec("by_args", str(sleeper), ("600",))
    assert count_processes([by_name, by_args]) == {"by_name": 0, "by_args": 0}
    procs = [subprocess.Popen([str(sleeper), s]) for s in ("600", "601")]
    try:
        assert count_processes([by_name, by_args]) == {"by_name": 2, "by_args": 1}
        procs[0].send_signal(signal.SIGKILL)
        os.waitid(os.P_PID, procs[0].pid, os.WEXITED | os.WNOWAIT)  # a zombie now
        assert count_processes([by_name, by_args]) == {"by_name": 1, "by_args": 0}
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert count_processes([by_name]) == {"by_name": 0}
