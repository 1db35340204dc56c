"""The local control socket `vrrpctl` talks to (docs/control.md).

A Unix stream socket, mode 0600, beside the `-p` pid file unless `--control-socket` names it
(`control_proto.socket_path`). Each connection sends one JSON request per line and gets one
JSON response per line. Engine state changes only through `runtime.call`, so a command runs in
the consumer task between two inputs like everything else (../../DESIGN.md).

Everything is bounded so a client cannot hurt the daemon: at most MAX_CLIENTS connections (the
next one makes the longest-idle one go, or is told "busy" if all are mid-request), a request
line of at most MAX_LINE bytes (longer, or not JSON: an error answer and a close),
IDLE_TIMEOUT_S for a client that says nothing, WRITE_TIMEOUT_S for one that does not read its
answers, CALL_TIMEOUT_S for the consumer to run a command. Each command is logged with the peer's
uid and pid from SO_PEERCRED ("who asked"); peers other than root (or the daemon's own user)
are refused even if the file mode was loosened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import stat
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from vrrpd import __version__
from vrrpd.core.actions import Action
from vrrpd.core.instance import ManualError
from vrrpd.runtime.control_proto import (
    MAX_LINE,
    ControlError,
    Request,
    error_response,
    ok_response,
    parse_request,
    socket_path,
    status_json,
    trackers_from_snapshot,
)

if TYPE_CHECKING:
    from vrrpd.runtime.daemon import Runtime

log = structlog.get_logger("vrrpd.control")

MAX_CLIENTS = 16
LISTEN_BACKLOG = 128
IDLE_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 5.0
CALL_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 1.0
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid

# Set by the command line (`vrrpd --control-socket`, `-p`) before the daemon starts: the
# runtime is built from the config alone and the service only sees the runtime.
_configured: dict[str, str | None] = {"path": None, "pid_file": None}


def configure(path: str | None, pid_file: str | None) -> str:
    """Record the command line's choice before the daemon starts; returns the socket path.

    Raises ControlError if another daemon answers there: two daemons must never share one
    socket (one of them would be unreachable, or commands would go to the wrong one)."""
    _configured.update(path=path, pid_file=pid_file)
    where = socket_path(path, pid_file)
    if live_daemon_at(where):
        raise ControlError("in_use", f"another vrrpd answers on control socket {where}")
    return where


def live_daemon_at(path: str) -> bool:
    """Does something accept connections on `path`? (A stale file from a crash does not.)"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(PROBE_TIMEOUT_S)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


@dataclass(slots=True)
class _Client:
    """One connection: who it is, and since when it has been waiting for a request."""

    who: str
    conn: socket.socket
    idle_since: float | None
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None


class ControlService:
    """The `control` service: owns the listening socket and one task per client."""

    name = "control"

    def __init__(self, runtime: Runtime, path: str | None = None) -> None:
        self.runtime = runtime
        self.path = path or socket_path(_configured["path"], _configured["pid_file"])
        self._sock: socket.socket | None = None
        self._accept: asyncio.Task[None] | None = None
        self._clients: dict[asyncio.Task[None], _Client] = {}

    async def start(self) -> None:
        """Bind, unless the path is taken: a live daemon's socket is never stolen (the daemon
        then runs without a control socket and says so); a stale socket file is removed."""
        try:
            self._sock = self._bind()
        except (ControlError, OSError) as exc:
            log.error(f"control socket {self.path} not available: {exc}")
            return
        assert self.runtime.tasks is not None
        self._accept = self.runtime.tasks.create_task(self._accept_loop())
        log.info(f"control socket listening on {self.path}")

    async def stop(self) -> None:
        tasks = [t for t in (self._accept, *self._clients) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _bind(self) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            mode = os.lstat(self.path).st_mode
            if not stat.S_ISSOCK(mode):
                raise ControlError("in_use", "a file that is not a socket is there")
            if live_daemon_at(self.path):
                raise ControlError("in_use", "another running daemon answers on it")
            os.unlink(self.path)  # stale: left by a daemon that did not stop cleanly
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)  # born 0600: no window in which others could connect
            try:
                sock.bind(self.path)
            finally:
                os.umask(old)
            os.chmod(self.path, 0o600)
            sock.listen(LISTEN_BACKLOG)  # a burst of clients queues; MAX_CLIENTS bounds service
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None and self.runtime.tasks is not None
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:  # EMFILE and friends: wait instead of spinning
                log.error(f"control socket accept failed: {exc}")
                await asyncio.sleep(0.5)
                continue
            who, allowed = _peer(conn)
            if not allowed:
                log.warning(f"control: refused {who}: not root")
                _refuse(conn, "permission_denied", "the control socket is for root only")
            elif len(self._clients) >= MAX_CLIENTS and not self._evict_idlest():
                log.warning(f"control: refused {who}: {MAX_CLIENTS} requests in progress")
                _refuse(conn, "busy", f"{MAX_CLIENTS} requests in progress; try again")
            else:
                client = _Client(who, conn, loop.time())
                client.task = self.runtime.tasks.create_task(self._serve(client))
                self._clients[client.task] = client
                client.task.add_done_callback(lambda t: self._clients.pop(t, None))
            await asyncio.sleep(0)  # a backlog of connections must not starve their tasks

    def _evict_idlest(self) -> bool:
        """Full: the client idle the longest makes room, so a silent crowd cannot lock an
        operator out for IDLE_TIMEOUT_S; clients with a request in progress are kept."""
        idle = [c for c in self._clients.values() if c.idle_since is not None]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.idle_since or 0.0)
        log.warning(f"control: dropped idle {victim.who}: {MAX_CLIENTS} clients connected")
        msg = "too many clients; the longest idle goes first"
        if victim.writer is not None:
            victim.writer.write(error_response("evicted", msg))
        else:  # its task has not started: it would never close the socket itself
            _refuse(victim.conn, "evicted", msg)
        if victim.task is not None:
            victim.task.cancel()
            self._clients.pop(victim.task, None)
        return True

    async def _serve(self, client: _Client) -> None:
        """One client until it closes, idles, or sends something that is not a request."""
        try:
            reader, client.writer = await asyncio.open_unix_connection(
                sock=client.conn, limit=MAX_LINE
            )
            while await self._one_request(reader, client):
                pass
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or stopped reading; nothing to answer
        except Exception as exc:  # a bug here must cost one connection, never the daemon
            log.error(f"control: request from {client.who} failed: {exc!r}")
        finally:
            if client.writer is not None:
                client.writer.close()
            else:
                client.conn.close()

    async def _one_request(self, reader: asyncio.StreamReader, client: _Client) -> bool:
        """Read, run and answer one request; False when the connection should close."""
        writer, who = client.writer, client.who
        assert writer is not None
        client.idle_since = asyncio.get_running_loop().time()
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), IDLE_TIMEOUT_S)
        except asyncio.IncompleteReadError as eof:
            if not eof.partial.strip():
                return False
            line = eof.partial  # the last request may come without its newline
        except asyncio.LimitOverrunError:
            log.warning(f"control: request from {who} longer than {MAX_LINE} bytes")
            await _send(writer, error_response("too_long", f"request over {MAX_LINE} bytes"))
            return False
        except TimeoutError:
            msg = f"no request within {IDLE_TIMEOUT_S:g} s"
            await _send(writer, error_response("timeout", msg))
            return False
        client.idle_since = None
        if not line.strip():
            return True
        if len(line) > MAX_LINE:
            await _send(writer, error_response("too_long", f"request over {MAX_LINE} bytes"))
            return False
        try:
            req = parse_request(line)
        except ControlError as err:
            log.warning(f"control: bad request from {who}: {err.message}")
            await _send(writer, error_response(err.code, err.message))
            return err.code not in ("bad_json", "bad_request")  # garbage: close
        await _send(writer, await self._answer(req, who))
        return True

    async def _answer(self, req: Request, who: str) -> bytes:
        if req.cmd == "status":
            log.debug(f"control: status requested by {who}")
        else:
            log.info(f"control: {req.describe()} requested by {who}")
        try:
            result = await asyncio.wait_for(self._run(req, who), CALL_TIMEOUT_S)
        except ControlError as err:
            log.warning(f"control: {req.describe()} by {who} refused: {err.message}")
            return error_response(err.code, err.message, req.id)
        except TimeoutError:
            return error_response("timeout", "the daemon did not answer in time", req.id)
        return ok_response(result, req.id)

    async def _run(self, req: Request, who: str) -> Any:
        engine, name = self.runtime.engine, req.instance or ""
        if req.instance is not None and req.instance not in engine.instances:
            known = ", ".join(sorted(engine.instances)) or "none"
            raise ControlError("unknown_instance", f"no instance {req.instance!r} (have: {known})")
        match req.cmd:
            case "status":
                return await self._status()
            case "reload":
                return _reload()
            case "priority":
                prio = req.priority
                await self._manual(lambda now: engine.override_priority(name, prio, now, who=who))
            case "resign":
                hold = req.hold_s
                await self._manual(lambda now: engine.resign(name, now, hold, who=who))
            case "takeover":
                await self._manual(lambda now: engine.takeover(name, now, who=who))
        return {"message": f"{req.describe()} done", "instance": await self._one(name)}

    async def _manual(self, fn: Callable[[float], list[Action]]) -> None:
        """Run a manual-failover engine call in the consumer task (its actions run there too);
        the engine's refusal (`ManualError`: wrong state, sync group) becomes the answer."""

        def call(now: float) -> list[Action] | ManualError:
            try:
                return fn(now)
            except ManualError as err:  # an answer, not a failed internal call to log
                return err

        result = await self.runtime.call(call)
        if isinstance(result, ManualError):
            raise ControlError("failed", str(result))

    async def _status(self) -> dict[str, Any]:
        engine = self.runtime.engine
        statuses, now = await self.runtime.call(lambda now: (engine.status(), now))
        wall = time.time()
        configs = {i.name: i for i in engine.config.instances}
        snapshot = self._trackers_snapshot()
        trackers = None
        if snapshot is not None:
            trackers = lambda cfg: trackers_from_snapshot(snapshot, cfg)  # noqa: E731
        instances = status_json(statuses, configs, now, wall, trackers)
        return {"pid": os.getpid(), "version": __version__, "instances": instances}

    async def _one(self, name: str | None) -> dict[str, Any] | None:
        status = await self._status()
        return next((i for i in status["instances"] if i["name"] == name), None)

    def _trackers_snapshot(self) -> Any:
        for service in self.runtime.services:
            if service.name == "trackers" and callable(getattr(service, "snapshot", None)):
                try:
                    return service.snapshot()  # type: ignore[attr-defined]
                except Exception as exc:  # status must answer even if a tracker view breaks
                    log.error(f"control: trackers snapshot failed: {exc!r}")
        return None


def _reload() -> dict[str, str]:
    """keepalived RELOAD is SIGHUP; the reload itself belongs to the SIGHUP handler."""
    handler = signal.getsignal(signal.SIGHUP)
    if handler in (signal.SIG_DFL, signal.SIG_IGN, None):
        # With no handler installed SIGHUP would kill the daemon: refuse instead.
        raise ControlError("unsupported", "this vrrpd does not handle SIGHUP (reload) yet")
    os.kill(os.getpid(), signal.SIGHUP)
    return {"message": "reload requested"}


def _peer(conn: socket.socket) -> tuple[str, bool]:
    """Who is connected ("uid U pid P (comm)", from SO_PEERCRED), and may they use us?"""
    try:
        pid, uid, _ = _UCRED.unpack(
            conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
    except OSError:
        return "unknown peer", False
    comm = ""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/comm") as fh:
        comm = f" ({fh.read(64).strip()})"
    return f"uid {uid} pid {pid}{comm}", uid in (0, os.geteuid())


def _refuse(conn: socket.socket, code: str, message: str) -> None:
    """Answer and close without a task: a non-blocking send of one short line, best effort."""
    with contextlib.suppress(OSError):
        conn.send(error_response(code, message), socket.MSG_DONTWAIT)
    conn.close()


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
