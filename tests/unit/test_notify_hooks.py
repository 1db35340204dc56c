"""The notify hooks with real processes and real FIFOs (keepalived `vrrp_notify.c` contract)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from vrrpd.config.model import (
    Command,
    Config,
    FifoSpec,
    GlobalDefs,
    InstanceConfig,
    NotifySpec,
    SyncGroupConfig,
)
from vrrpd.io import security
from vrrpd.io.notify import Notifier

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="script security and users need root")

RECORD = '#!/bin/sh\nprintf "%s\\n" "$*" >> {out}\n'


@pytest.fixture(autouse=True)
def fresh_security(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_default", security.ScriptSecurity())


@pytest.fixture
def box() -> Iterator[Path]:
    """A root-owned 0755 directory reachable by every user (not under pytest's 0700 tmp)."""
    d = Path(tempfile.mkdtemp(prefix="vrrpd-notify-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def script(d: Path, name: str, body: str, mode: int = 0o755) -> str:
    p = d / name
    p.write_text(body)
    p.chmod(mode)
    return str(p)


def recorder(d: Path, name: str) -> tuple[str, Path]:
    """A script that appends its arguments as one line to `name`.out."""
    out = d / f"{name}.out"
    return script(d, name, RECORD.format(out=out)), out


def config(
    notify: NotifySpec | None = None,
    group: NotifySpec | None = None,
    fifo: FifoSpec | None = None,
    **g: Any,
) -> Config:
    inst = InstanceConfig(name="VI_1", vrid=51, interface="eth0", notify=notify or NotifySpec())
    groups = (SyncGroupConfig("G1", ("VI_1",), notify=group),) if group else ()
    return Config(GlobalDefs(vrrp_notify_fifo=fifo, **g), (inst,), groups)


def run(body: Callable[[Notifier], Any], cfg: Config) -> Notifier:
    """Build a Notifier in a TaskGroup, run `body`, close it and wait for every watcher."""
    holder: list[Notifier] = []

    async def main() -> None:
        async with asyncio.TaskGroup() as tasks:
            notifier = Notifier(cfg, tasks.create_task)
            holder.append(notifier)
            try:
                result = body(notifier)
                if asyncio.iscoroutine(result):
                    await result
            finally:
                notifier.close()

    asyncio.run(main())
    return holder[0]


def read_fifo(path: str) -> list[str]:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        data = b""
    finally:
        os.close(fd)
    return data.decode().splitlines()


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@needs_root
def test_state_script_generic_and_fifo_in_order(box: Path) -> None:
    master, master_out = recorder(box, "master")
    generic, generic_out = recorder(box, "generic")
    fifo = str(box / "fifo")
    notify = NotifySpec(master=Command((master, "a b", "c")), generic=Command((generic, "--flag")))
    seen: dict[str, object] = {}

    async def body(n: Notifier) -> None:
        n.fire("INSTANCE", "VI_1", "MASTER", 100)
        # Both forked, state script first, and the FIFO line written, before fire() returned.
        seen["argv0"] = [c.name for c in n.running.values()]
        await wait_for(lambda: not n.running)

    assert not os.path.exists(fifo)
    n = run(body, config(notify, fifo=FifoSpec(fifo)))
    assert seen["argv0"] == [master, generic]
    assert master_out.read_text() == "a b c\n"  # only the configured argv
    assert generic_out.read_text() == "--flag INSTANCE VI_1 MASTER 100\n"
    assert (n.spawned, n.failures) == (2, 0)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert stat.S_IMODE(os.stat(fifo).st_mode) & 0o777 == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@needs_root
def test_fifo_lines_exact(box: Path) -> None:
    fifo = str(box / "fifo")
    os.mkfifo(fifo)

    def body(n: Notifier) -> None:
        n.fire("INSTANCE", "VI_1", "BACKUP", 100)
        n.fire("GROUP", "G1", "BACKUP", 77)  # a group's priority is always 0
        n.fire("INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", 100)
        n.fire("INSTANCE", "VI_1", "MASTER_PRIORITY", 90)
        n.fire("INSTANCE", "VI_1", "BACKUP_PRIORITY", 80)
        seen.extend(read_fifo(fifo))

    seen: list[str] = []
    run(body, config(fifo=FifoSpec(fifo)))
    assert seen == [
        'INSTANCE "VI_1" BACKUP 100',
        'GROUP "G1" BACKUP 0',
        'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100',
        'INSTANCE "VI_1" MASTER_PRIORITY 90',
        'INSTANCE "VI_1" BACKUP_PRIORITY 80',
    ]


@needs_root
def test_group_and_event_only_scripts(box: Path) -> None:
    gen, gen_out = recorder(box, "gen")
    lower, lower_out = recorder(box, "lower")
    gmaster, gmaster_out = recorder(box, "gmaster")
    notify = NotifySpec(generic=Command((gen,)), master_rx_lower_pri=Command((lower, "x")))
    group = NotifySpec(master=Command((gmaster,)), generic=Command((gen,)))

    async def body(n: Notifier) -> None:
        n.fire("INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", 100)  # no generic for this event
        n.fire("INSTANCE", "VI_1", "MASTER_PRIORITY", 100)  # FIFO only
        n.fire("GROUP", "G1", "MASTER", 0)
        await wait_for(lambda: not n.running)

    run(body, config(notify, group))
    assert lower_out.read_text() == "x\n"
    assert gen_out.read_text() == "GROUP G1 MASTER 0\n"
    assert gmaster_out.read_text() == "\n"


def test_each_fifo_gets_its_kinds_of_lines_and_a_shared_path_each_line_once(
    tmp_path: Path,
) -> None:
    """notify_fifo: VRRP and LVS lines; vrrp_notify_fifo: VRRP; lvs_notify_fifo: LVS (man5)."""
    every, vrrp, lvs = (str(tmp_path / n) for n in ("all", "vrrp", "lvs"))
    seen: dict[str, list[str]] = {}
    lvs_line = "RS [192.0.2.13]:tcp:80 [192.0.2.100]:tcp:80 DOWN\n"

    def body(n: Notifier) -> None:
        n.fire("INSTANCE", "VI_1", "MASTER", 100)
        n.fifo_line(lvs_line, "lvs")
        seen.update((p, read_fifo(p)) for p in (every, vrrp, lvs))

    run(body, config(fifo=FifoSpec(vrrp), notify_fifo=FifoSpec(every),
                     lvs_notify_fifo=FifoSpec(lvs)))  # fmt: skip
    master, down = 'INSTANCE "VI_1" MASTER 100', lvs_line.strip()
    assert seen == {every: [master, down], vrrp: [master], lvs: [down]}

    shared: list[str] = []

    def once(n: Notifier) -> None:
        n.fire("INSTANCE", "VI_1", "BACKUP", 100)
        n.fifo_line(lvs_line, "lvs")
        shared.extend(read_fifo(every))

    run(once, config(notify_fifo=FifoSpec(every), lvs_notify_fifo=FifoSpec(every)))
    assert shared == ['INSTANCE "VI_1" BACKUP 100', down]


def test_full_fifo_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    fifo = str(tmp_path / "fifo")

    def body(n: Notifier) -> None:
        with capture_logs() as logs:
            started = time.monotonic()
            for _ in range(5000):  # ~150 KB: more than a pipe holds; nobody reads
                n.fire("INSTANCE", "VI_1", "BACKUP", 100)
            assert time.monotonic() - started < 2.0
        stats.update(written=n.fifos[0].written, dropped=n.fifos[0].dropped)
        stats["logs"] = [e["event"] for e in logs]

    stats: dict[str, Any] = {}
    run(body, config(fifo=FifoSpec(fifo)))
    assert stats["written"] + stats["dropped"] == 5000
    assert stats["dropped"] > 0 and stats["written"] > 0
    assert stats["logs"] == [f"notify FIFO {fifo} full (reader too slow?) - dropping lines"]


def test_path_that_is_not_a_fifo_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "plain"
    path.write_text("")
    with capture_logs() as logs:
        n = run(
            lambda n: n.fire("INSTANCE", "VI_1", "MASTER", 100), config(fifo=FifoSpec(str(path)))
        )
    assert [e["event"] for e in logs] == [f"Unable to open notify FIFO {path}: not a FIFO"]
    assert n.fifos == []  # closed
    assert path.read_text() == ""


@needs_root
def test_stop_script_gets_one_second_then_its_group_is_killed(box: Path) -> None:
    pidfile = box / "pids"
    stop = script(box, "stop", f"#!/bin/sh\nsleep 30 &\necho $$ $! > {pidfile}\nsleep 30\n")
    started = time.monotonic()

    def body(n: Notifier) -> None:
        n.fire("INSTANCE", "VI_1", "STOP", 100)

    with capture_logs() as logs:
        n = run(body, config(NotifySpec(stop=Command((stop,)))))
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 5.0  # the daemon waited for it, but not for 30 s
    for pid in (int(p) for p in pidfile.read_text().split()):
        assert _gone(pid), f"pid {pid} survived"  # the script and its background child
    assert n.failures == 1
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        f"notify script {stop} still running after 1s - killing it"
    ]


def _gone(pid: int) -> bool:
    """Dead: no such process, or a zombie left for its new parent (init) to reap."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


@needs_root
def test_failing_missing_and_refused_scripts_are_reported_once(box: Path) -> None:
    failing = script(box, "failing", "#!/bin/sh\nexit 3\n")
    unsafe = script(box, "unsafe", "#!/bin/sh\nexit 0\n", mode=0o777)
    missing = str(box / "missing")
    notify = NotifySpec(
        master=Command((failing,)), backup=Command((missing,)), fault=Command((unsafe,))
    )

    async def body(n: Notifier) -> None:
        for _ in range(2):
            for event in ("MASTER", "BACKUP", "FAULT"):
                n.fire("INSTANCE", "VI_1", event, 100)
            await wait_for(lambda: not n.running)

    with capture_logs() as logs:
        n = run(body, config(notify, enable_script_security=True))
    ours = [e["event"] for e in logs if e["log_level"] == "error"]
    assert ours == [
        f"Cannot run notify script {missing}: check_script_secure could not find script"
        f" '{missing}'",
        f"Cannot run notify script {unsafe}: Unsafe permissions found for script '{unsafe}'",
        f"notify script {failing} exited with status 3",
    ]
    assert (n.spawned, n.failures) == (2, 6)  # only `failing` ran, twice


def test_security_violation_logged_once_at_load_without_script_security(tmp_path: Path) -> None:
    ok = script(tmp_path, "ok", "#!/bin/sh\n")
    with capture_logs() as logs:
        run(lambda n: None, config(NotifySpec(master=Command((ok,)), backup=Command((ok,)))))
    assert [e["event"] for e in logs] == [
        "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
    ]


@needs_root
def test_script_runs_as_its_user(box: Path) -> None:
    out = box / "id.out"
    out.write_text("")
    os.chown(out, 65534, 65534)
    who = script(box, "who", f"#!/bin/sh\nid -u >> {out}\nid -g >> {out}\n")

    async def body(n: Notifier) -> None:
        n.fire("INSTANCE", "VI_1", "MASTER", 100)
        await wait_for(lambda: not n.running)

    run(body, config(NotifySpec(master=Command((who,), user="nobody"))))
    assert out.read_text() == "65534\n65534\n"


@needs_root
def test_close_ends_running_scripts_and_the_fifo_script_reads_to_eof(box: Path) -> None:
    fifo = str(box / "fifo")
    lines = box / "lines"
    consumer = script(box, "consumer", f'#!/bin/sh\nexec cat "$1" > {lines}\n')
    slow = script(box, "slow", "#!/bin/sh\nsleep 30\n")
    spec = FifoSpec(fifo, script=Command((consumer,)))

    def reading(n: Notifier) -> bool:
        """The consumer (cat, exec'd in place of the script) has the FIFO open."""
        (pid,) = n.running
        with contextlib.suppress(OSError):
            fds = os.listdir(f"/proc/{pid}/fd")
            return any(os.readlink(f"/proc/{pid}/fd/{fd}") == fifo for fd in fds)
        return False

    async def body(n: Notifier) -> None:
        await wait_for(lambda: reading(n))
        n.fire("INSTANCE", "VI_1", "MASTER", 100)
        n.fire("INSTANCE", "VI_1", "STOP", 100)
        state["pids"] = list(n.running)

    state: dict[str, Any] = {}
    started = time.monotonic()
    n = run(body, config(NotifySpec(master=Command((slow,))), fifo=spec))
    assert time.monotonic() - started < 5.0
    assert lines.read_text() == 'INSTANCE "VI_1" MASTER 100\nINSTANCE "VI_1" STOP 100\n'
    assert n.running == {}
    for pid in state["pids"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert n.failures == 0  # told to stop: not failures


def test_fifo_script_gets_the_path_as_last_argument(box: Path) -> None:
    fifo = str(box / "fifo")
    out = box / "args"
    args = script(box, "args", f'#!/bin/sh\nprintf "%s|" "$@" > {out}\n')

    async def body(n: Notifier) -> None:
        await wait_for(lambda: out.exists() and out.read_text() != "")

    run(body, config(fifo=FifoSpec(fifo, script=Command((args, "-v")))))
    assert out.read_text() == f"-v|{fifo}|"


def test_sigterm_is_what_close_sends(box: Path) -> None:
    marker, ready = box / "term", box / "ready"
    body_sh = (
        f"#!/bin/sh\ntrap 'echo TERM > {marker}; exit 0' TERM\ntouch {ready}\nsleep 30 & wait\n"
    )
    trap = script(box, "trap", body_sh)

    async def body(n: Notifier) -> None:
        n.fire("INSTANCE", "VI_1", "MASTER", 100)
        await wait_for(ready.exists)  # the shell installed its trap

    run(body, config(NotifySpec(master=Command((trap,)))))
    assert marker.read_text() == "TERM\n"
