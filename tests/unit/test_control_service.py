"""The control socket on a real asyncio loop and a real Unix socket, with the real engine.

The runtime is a small stand-in with what the service uses (`engine`, `tasks`, `services`,
`call`), so these run without root or a network namespace; the daemon itself is exercised in
tests/integration/test_control.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest

from vrrpd.config.model import Config, InstanceConfig, VipSpec
from vrrpd.core.engine import Engine
from vrrpd.core.inputs import LinkState
from vrrpd.runtime import control
from vrrpd.runtime.control import ControlService
from vrrpd.runtime.control_proto import MAX_LINE

CFG = InstanceConfig(
    name="VI_1", vrid=51, interface="d0", priority=150,
    vips=(VipSpec(IPv4Interface("192.0.2.100/24")),),
)  # fmt: skip


class StandInRuntime:
    """What ControlService needs of `vrrpd.runtime.daemon.Runtime`; `call` runs `fn(now)`
    right away, the way the consumer task would, and records it."""

    def __init__(self, tasks: asyncio.TaskGroup) -> None:
        self.engine = Engine(Config(instances=(CFG,)))
        self.engine.on_link(LinkState("d0", 3, True, IPv4Address("192.0.2.1")), 0.0)
        self.engine.start(0.0)
        self.tasks = tasks
        self.services: list[Any] = []
        self.calls = 0
        self.control: ControlService | None = None

    async def call(self, fn: Callable[[float], Any]) -> Any:
        self.calls += 1
        return fn(asyncio.get_running_loop().time())


def serve(tmp_path: Path, body: Callable[[str, StandInRuntime], Awaitable[None]]) -> None:
    """Run `body(socket_path, runtime)` with the service started, then stop it."""
    path = str(tmp_path / "vrrpd.ctl")

    async def main() -> None:
        async with asyncio.TaskGroup() as tasks:
            runtime = StandInRuntime(tasks)
            service = ControlService(runtime, path)  # type: ignore[arg-type]
            runtime.control = service
            await service.start()
            try:
                await body(path, runtime)
            finally:
                await service.stop()
        assert not os.path.exists(path), "stop() removes the socket file"

    asyncio.run(main())


async def exchange(path: str, *lines: bytes) -> list[dict[str, Any]]:
    """Send lines, then read answers until the daemon closes or goes quiet."""
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 22)
    for line in lines:
        writer.write(line)
    await writer.drain()
    writer.write_eof()
    answers = []
    # A daemon that closes on a request it has not read makes the kernel reset the connection
    # once the answers already sent have been read: that counts as the end too.
    with contextlib.suppress(ConnectionResetError):
        while raw := await asyncio.wait_for(reader.readline(), 5):
            answers.append(json.loads(raw))
    writer.close()
    return answers


def test_status_and_errors_on_one_connection(tmp_path):
    async def body(path: str, runtime: StandInRuntime) -> None:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        status, unknown_cmd, unknown_inst = await exchange(
            path,
            b'{"cmd": "status", "id": 1}\n',
            b'{"cmd": "explode"}\n',
            b'{"cmd": "takeover", "instance": "nope"}',  # the last line may lack its newline
        )
        assert status["ok"] and status["id"] == 1
        (inst,) = status["result"]["instances"]
        assert (inst["name"], inst["state"], inst["vips"]) == ("VI_1", "BACKUP", ["192.0.2.100/24"])
        assert status["result"]["pid"] == os.getpid()
        assert unknown_cmd["error"]["code"] == "unknown_command"
        assert unknown_inst["error"]["code"] == "unknown_instance"
        assert "no instance 'nope' (have: VI_1)" in unknown_inst["error"]["message"]

    serve(tmp_path, body)


def test_garbage_and_huge_lines_get_an_error_and_a_close(tmp_path):
    async def body(path: str, runtime: StandInRuntime) -> None:
        answers = await exchange(path, b"GET / HTTP/1.0\n", b'{"cmd": "status"}\n')
        assert [a["error"]["code"] for a in answers] == ["bad_json"]  # closed after garbage
        answers = await exchange(path, b"x" * (MAX_LINE + 10) + b"\n", b'{"cmd": "status"}\n')
        assert [a["error"]["code"] for a in answers] == ["too_long"]
        # the service is still there for the next client
        (ok,) = await exchange(path, b'{"cmd": "status"}\n')
        assert ok["ok"]

    serve(tmp_path, body)


def test_silent_client_is_dropped_after_the_idle_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "IDLE_TIMEOUT_S", 0.2)

    async def body(path: str, runtime: StandInRuntime) -> None:
        reader, writer = await asyncio.open_unix_connection(path)
        answer = json.loads(await asyncio.wait_for(reader.readline(), 5))
        assert answer["error"]["code"] == "timeout"
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and closed
        writer.close()

    serve(tmp_path, body)


def test_a_new_client_pushes_out_the_longest_idle_one(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "MAX_CLIENTS", 3)

    async def body(path: str, runtime: StandInRuntime) -> None:
        assert runtime.control is not None
        idle = []
        for n in range(1, 4):
            idle.append(await asyncio.open_unix_connection(path))
            await wait_for(lambda n=n: len(runtime.control._clients) == n, "the client to be taken")
        (ok,) = await exchange(path, b'{"cmd": "status"}\n')
        assert ok["ok"]
        oldest = json.loads(await asyncio.wait_for(idle[0][0].readline(), 5))
        assert oldest["error"]["code"] == "evicted"
        assert await asyncio.wait_for(idle[0][0].read(), 5) == b""
        for _, w in idle:
            w.close()

    serve(tmp_path, body)


def test_when_every_client_is_mid_request_the_next_is_told_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "MAX_CLIENTS", 2)

    async def body(path: str, runtime: StandInRuntime) -> None:
        release = asyncio.Event()
        plain_call = runtime.call

        async def slow_call(fn: Callable[[float], Any]) -> Any:
            await release.wait()  # a consumer busy elsewhere
            return await plain_call(fn)

        runtime.call = slow_call  # type: ignore[method-assign]
        pending = [asyncio.create_task(exchange(path, b'{"cmd": "status"}\n')) for _ in range(2)]
        assert runtime.control is not None
        await wait_for(
            lambda: sum(c.idle_since is None for c in runtime.control._clients.values()) == 2,
            "both requests to be in progress",
        )
        (busy,) = await exchange(path, b'{"cmd": "status"}\n')
        assert busy["error"]["code"] == "busy"
        release.set()
        for task in pending:
            (answer,) = await task
            assert answer["ok"]

    serve(tmp_path, body)


async def wait_for(predicate: Callable[[], object], what: str, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def test_a_client_that_never_reads_cannot_block_others(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "WRITE_TIMEOUT_S", 0.3)

    async def body(path: str, runtime: StandInRuntime) -> None:
        hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.connect(path)
        hog.setblocking(False)
        with pytest.raises(BlockingIOError):  # fill both buffers: it never reads an answer
            while True:
                hog.send(b'{"cmd": "status"}\n' * 200)
        (ok,) = await exchange(path, b'{"cmd": "status"}\n')
        assert ok["ok"]
        hog.close()

    serve(tmp_path, body)


def test_manual_failover_commands_reach_the_engine_with_who_asked(tmp_path):
    async def body(path: str, runtime: StandInRuntime) -> None:
        (prio,) = await exchange(path, b'{"cmd": "priority", "instance": "VI_1", "priority": 170}')
        assert prio["ok"], prio
        inst = prio["result"]["instance"]
        assert (inst["base_priority"], inst["base_override"]) == (170, 170)
        assert prio["result"]["message"] == "priority VI_1 170 done"

        (take,) = await exchange(path, b'{"cmd": "takeover", "instance": "VI_1"}')
        assert take["ok"], take
        assert take["result"]["instance"]["state"] == "MASTER"
        assert take["result"]["instance"]["manual"] == "takeover"

        (resign,) = await exchange(path, b'{"cmd": "resign", "instance": "VI_1", "hold_s": 60}')
        assert resign["ok"], resign
        inst = resign["result"]["instance"]
        assert (inst["state"], inst["manual"]) == ("BACKUP", "resign")
        assert 0 < inst["manual_remaining_s"] <= 60

        (clear,) = await exchange(
            path, b'{"cmd": "priority", "instance": "VI_1", "priority": null}'
        )
        inst = clear["result"]["instance"]
        assert (inst["base_priority"], inst["base_override"], inst["manual"]) == (150, None, None)

        # the engine's refusal is the answer: a FAULT instance cannot take over
        runtime.engine.set_fault("VI_1", "test", "link gone", 1.0)
        (refused,) = await exchange(path, b'{"cmd": "takeover", "instance": "VI_1"}')
        assert refused["error"]["code"] == "failed"
        assert refused["error"]["message"]

    serve(tmp_path, body)


def test_stale_socket_is_replaced_and_a_live_one_is_left_alone(tmp_path, caplog):
    path = tmp_path / "vrrpd.ctl"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a crashed daemon leaves

    async def body(p: str, runtime: StandInRuntime) -> None:
        assert control.live_daemon_at(p)
        # a second service on the same path must not steal it
        second = ControlService(runtime, p)  # type: ignore[arg-type]
        await second.start()
        assert second._sock is None
        await second.stop()
        assert os.path.exists(p)
        (ok,) = await exchange(p, b'{"cmd": "status"}\n')
        assert ok["ok"]

    serve(tmp_path, body)


def test_configure_refuses_a_path_where_a_daemon_answers(tmp_path):
    path = tmp_path / "main.ctl"
    assert control.configure(None, str(tmp_path / "main.pid")) == str(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(path))
        live.listen(1)
        with pytest.raises(control.ControlError, match="another vrrpd answers"):
            control.configure(None, str(tmp_path / "main.pid"))
    control.configure(None, None)


def test_a_regular_file_on_the_path_is_not_removed(tmp_path):
    async def body(path: str, runtime: StandInRuntime) -> None:
        other = tmp_path / "not-a-socket"
        other.write_text("keep me")
        service = ControlService(runtime, str(other))  # type: ignore[arg-type]
        await service.start()
        assert service._sock is None
        assert other.read_text() == "keep me"

    serve(tmp_path, body)
