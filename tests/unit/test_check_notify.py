"""LVS notify scripts and commands: quorum_up/quorum_down and notify_up/notify_down run without a
shell with their arguments, in keepalived's order (script, then FIFO line); a command that hangs
is killed with its process group at its timeout or at close()."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address
from pathlib import Path

from vrrpd.check.notify import LvsNotifier
from vrrpd.check.proc import run_command
from vrrpd.config.lvsmodel import RealServerSpec, VirtualServerSpec
from vrrpd.config.model import Command


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan waits for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def until(predicate: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_quorum_and_real_server_notifies(tmp_path: Path) -> None:
    out = tmp_path / "out"
    note = script(tmp_path / "note.sh", f'echo "$@" >> {out}')
    rs = RealServerSpec(ip_address("192.0.2.21"), 80, notify_up=Command((str(note), "rs up")))
    vs = VirtualServerSpec(
        address=ip_address("192.0.2.10"),
        port=80,
        quorum_up=Command((str(note), "quorum", "up")),
        quorum_down=Command((str(note), "quorum down")),
        real_servers=(rs,),
    )
    lines: list[str] = []

    async def go() -> None:
        notifier = LvsNotifier(lines.append)
        notifier.vs_changed(vs, False)
        await until(out.exists)
        notifier.vs_changed(vs, True)
        notifier.rs_changed(vs, rs, True)
        notifier.rs_changed(vs, rs, False)  # no notify_down: only the FIFO line
        await notifier.close(grace_s=5)

    asyncio.run(go())
    assert sorted(out.read_text().splitlines()) == ["quorum down", "quorum up", "rs up"]
    assert lines == [
        "VS [192.0.2.10]:tcp:80 DOWN\n",
        "VS [192.0.2.10]:tcp:80 UP\n",
        "RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 UP\n",
        "RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 DOWN\n",
    ]


def test_commands_end_with_their_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hang = script(tmp_path / "hang.sh", f"sleep 30 &\necho $$ $! > {pids}\nwait")
    missing = Command((str(tmp_path / "absent"),))

    async def go() -> tuple[object, object, object]:
        timed = await run_command(Command((str(hang),)), 0.3)
        status = await run_command(Command(("/bin/sh", "-c", "exit 7")), 5)
        absent = await run_command(missing, 5)
        task = asyncio.create_task(run_command(Command((str(hang),)), 30))
        await until(lambda: pids.exists() and len(pids.read_text().split()) == 2)
        second = [int(p) for p in pids.read_text().split()]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await until(lambda: not any(running(p) for p in second))
        return timed, status, absent

    timed, status, absent = asyncio.run(go())
    assert getattr(timed, "timed_out", False)
    assert getattr(status, "rc", None) == 7
    assert getattr(absent, "error", None) == "No such file or directory"
