"""io/scripts.py with real processes: exit codes, signals, timeouts that kill the whole group,
cancellation and shutdown that leave nothing behind, the script user, a scrubbed environment,
and a missing script reported once."""

from __future__ import annotations

import asyncio
import errno
import os
import pwd
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from vrrpd.config.values import join_command, split_command
from vrrpd.io.scripts import Identity, RunResult, ScriptRunner, resolve_identity

ME = Identity(os.getuid(), os.getgid())


def sh(body: str) -> tuple[str, ...]:
    return ("/bin/sh", "-c", body)


def run(argv: tuple[str, ...], timeout_s: float = 5.0, runner: ScriptRunner | None = None):
    return asyncio.run((runner or ScriptRunner(secure=False)).run(argv, ME, timeout_s))


def gone(pid: int) -> bool:
    """Exited and reaped: a zombie still answers signal 0."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.ESRCH
    return False


def group_members(pgid: int) -> list[int]:
    """Live members of process group `pgid`. Zombies do not count: an orphaned child is
    re-parented to init, whose job it is to reap it (some container inits never do)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                out.append(int(entry.name))
    return out


def pids_in(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("/bin/true",), RunResult(rc=0)),
        (sh("exit 3"), RunResult(rc=3)),
        (sh("exit 255"), RunResult(rc=255)),
        (sh("kill -9 $$"), RunResult(signal=9)),
        (sh("kill -TERM $$"), RunResult(signal=15)),
    ],
)
def test_exit_status_and_signals(argv, expected):
    result = run(argv)
    assert result == expected
    assert result.ok is (expected.rc == 0)


def test_timeout_kills_the_whole_group_and_reaps_it(tmp_path: Path):
    pids = tmp_path / "pids"
    start = time.monotonic()
    result = run(sh(f"echo $$ >> {pids}; sleep 30 & echo $! >> {pids}; wait"), 1.0)
    elapsed = time.monotonic() - start
    assert result == RunResult(timed_out=True)
    assert elapsed < 10  # SIGTERM at 1 s: both die at once, no SIGKILL grace needed
    leader, *_children = pids_in(pids)
    assert gone(leader)
    assert group_members(leader) == []


def test_a_script_ignoring_sigterm_gets_sigkill(tmp_path: Path):
    pids = tmp_path / "pids"
    result = run(sh(f"trap '' TERM; echo $$ >> {pids}; sleep 30 & echo $! >> {pids}; wait"), 1.0)
    assert result.timed_out
    leader, *_children = pids_in(pids)
    assert gone(leader)
    assert group_members(leader) == []


def test_flooding_output_does_not_block():
    assert run(sh("yes | head -c 50000000; yes | head -c 5000000 >&2")) == RunResult(rc=0)


def test_missing_script_fails_and_is_reported_once(tmp_path: Path):
    runner = ScriptRunner(secure=False)
    missing = (str(tmp_path / "nope.sh"),)
    first = run(missing, runner=runner)
    second = run(missing, runner=runner)
    assert first == second
    assert first.error is not None and "nope.sh" in first.error
    assert runner.failed_to_start == 2
    assert len([r for r in runner.reported if "nope.sh" in r]) == 1


def test_not_executable_script_fails(tmp_path: Path):
    path = tmp_path / "plain.sh"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o644)
    result = run((str(path),))
    assert result.error is not None and not result.ok


def test_cancelled_run_leaves_no_process(tmp_path: Path):
    pids = tmp_path / "pids"

    async def main() -> None:
        runner = ScriptRunner(secure=False)
        task = asyncio.create_task(runner.run(sh(f"echo $$ >> {pids}; sleep 30"), ME, 10))
        while not pids.exists():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert runner.running == {}

    asyncio.run(main())
    (leader,) = pids_in(pids)
    assert gone(leader)
    assert group_members(leader) == []


def test_close_kills_running_scripts(tmp_path: Path):
    pids = tmp_path / "pids"

    async def main() -> RunResult:
        runner = ScriptRunner(secure=False)
        task = asyncio.create_task(runner.run(sh(f"echo $$ >> {pids}; sleep 30"), ME, 10))
        while not pids.exists():
            await asyncio.sleep(0.01)
        await runner.close()
        return await task

    result = asyncio.run(main())
    assert result == RunResult(signal=9)
    assert gone(pids_in(pids)[0])


def test_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LD_PRELOAD", "/nonexistent.so")
    monkeypatch.setenv("IFS", ":")
    monkeypatch.setenv("VRRPD_TEST_KEEP", "yes")
    out = tmp_path / "env"
    assert run(sh(f"env > {out}")).ok
    env = out.read_text()
    assert "VRRPD_TEST_KEEP=yes" in env
    assert "LD_PRELOAD" not in env
    assert "IFS=" not in env


@pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root")
def test_runs_as_the_script_user():
    nobody = pwd.getpwnam("nobody")
    shared = Path(tempfile.mkdtemp(prefix="vrrpd-test-"))  # nobody cannot enter pytest's tmp
    shared.chmod(0o777)
    out = shared / "id"
    who = resolve_identity("nobody", None)
    assert (who.uid, who.gid) == (nobody.pw_uid, nobody.pw_gid)
    result = asyncio.run(
        ScriptRunner(secure=False).run(sh(f"id -u > {out}; id -g >> {out}"), who, 5)
    )
    assert result.ok
    try:
        assert out.read_text().split() == [str(nobody.pw_uid), str(nobody.pw_gid)]
    finally:
        shutil.rmtree(shared)


def test_unknown_user_is_an_error_not_a_crash():
    who = resolve_identity("no-such-user-vrrpd", None)
    assert who.error == "Script user 'no-such-user-vrrpd' does not exist"
    result = asyncio.run(ScriptRunner(secure=False).run(("/bin/true",), who, 1))
    assert result.error == who.error


@pytest.mark.parametrize(
    ("script", "rc"),
    [("</dev/null", 0), ("</nonexistent/vrrpd-test", 2), ("/bin/true </dev/null", 0)],
)
def test_a_leading_redirection_runs_through_the_shell_as_keepalived_does(script, rc):
    """keepalived 2.2.7 runs `</dev/null` (exit 0) and `</nonexistent` (exit 2, dash's code)
    through /bin/sh; a command that only contains a `<` later is executed directly."""
    argv = split_command(script)
    assert (argv[0] == "/bin/sh") is script.startswith("<")
    assert run(argv).rc == rc
    assert split_command(join_command(argv)) == argv  # --convert-to-yaml keeps it
