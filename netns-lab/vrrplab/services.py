"""Real services behind the lab's VIPs: nginx and MariaDB inside a router namespace.

Each instance keeps everything in `<workdir>/<router>/<service>/`: config, pid file, socket,
logs, temp files and data. Nothing goes to the system's paths (/etc/nginx, /run/nginx.pid,
/var/lib/nginx, /var/lib/mysql, /run/mysqld), so instances in different namespaces run side by
side. Servers listen on the wildcard address *inside their namespace*, which is what a real host
with a VIP needs (the VIP comes and goes; a socket bound to it could not be opened on a backup).
Readiness is polled against a deadline; processes are stopped by the PID we started.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import signal
import subprocess
from pathlib import Path

from vrrplab.netns import CLEANUP, LabError, in_netns, kill_pid, ns_exec, run, spawn_in, wait_until
from vrrplab.topo import Node

MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the NUL


class Server:
    """One server process in one router namespace, started and stopped by PID."""

    kind = "server"

    def __init__(self, node: Node, workdir: Path) -> None:
        self.node = node
        self.dir = workdir / node.name / self.kind
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "output.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str]) -> None:
        if self.running():
            raise LabError(f"{self.node.name}: {self.kind} already runs (pid {self.pid})")
        self.proc = spawn_in(self.node.ns, argv, self.log)

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise LabError(f"{self.node.name}: {self.kind} not started")
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise LabError(
                f"{self.node.name}: {self.kind} exited ({self.proc.returncode}):\n{tail}"
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """Signal the PID we started and wait for it; SIGKILL if it does not go in time."""
        if self.proc is None:
            return
        kill_pid(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_pid(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if self.proc.pid in CLEANUP.pids:
            CLEANUP.pids.remove(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL: the server dies without any shutdown (a crash)."""
        self.stop(signal.SIGKILL)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc/PID/task/TID/children, all threads)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(w) for w in (task / "children").read_text().split()]
    return found


class Nginx(Server):
    """nginx serving `page` at `/`, with `includes` (server-level snippets) in its one server.

    The status location of an example is added by including the example's own snippet file.
    """

    kind = "nginx"

    def __init__(
        self, node: Node, workdir: Path, page: str, includes: tuple[Path, ...] = (), port: int = 80
    ) -> None:
        super().__init__(node, workdir)
        self.page, self.includes, self.port = page, includes, port
        self.conf = self.dir / "nginx.conf"
        self.pid_file = self.dir / "nginx.pid"

    def conf_text(self) -> str:
        d = self.dir
        temps = "".join(
            f"    {kind}_temp_path {d}/tmp/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        incs = "".join(f"        include {p};\n" for p in self.includes)
        return (
            f"worker_processes 1;\npid {self.pid_file};\nerror_log {d}/error.log;\n"
            "events { worker_connections 64; }\n"
            f"http {{\n    access_log {d}/access.log;\n{temps}"
            "    default_type text/plain;\n"
            f"    server {{\n        listen {self.port};\n        server_name _;\n"
            f'        location = / {{ return 200 "{self.page}\\n"; }}\n{incs}    }}\n}}\n'
        )

    def start(self, timeout: float = 10) -> None:
        """Write the config, check it with `nginx -t`, run in the foreground, wait for `/`."""
        (self.dir / "tmp").mkdir(exist_ok=True)
        self.conf.write_text(self.conf_text())
        d = self.dir
        base = ["nginx", "-e", f"{d}/error.log", "-p", f"{d}/", "-c", str(self.conf)]
        run(ns_exec(self.node.ns, *base, "-t", "-q"))
        self._spawn([*base, "-g", "daemon off;"])

        def ready() -> bool:
            self._check_alive()
            return self.get("/", timeout=0.5) == (200, f"{self.page}\n")

        wait_until(ready, timeout, f"nginx on {self.node.name} to serve /", interval=0.05)

    def get(self, path: str, timeout: float = 1.0) -> tuple[int, str] | None:
        """GET http://127.0.0.1:PORT/PATH from inside the namespace; None if it does not answer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            with in_netns(self.node.ns):  # the socket is made (and stays) in the namespace
                conn.connect()
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def freeze(self, frozen: bool = True) -> list[int]:
        """SIGSTOP (or SIGCONT) the master and its workers: nginx hangs but every process exists."""
        pids = [self.pid, *children(self.pid)]
        for pid in pids:
            kill_pid(pid, signal.SIGSTOP if frozen else signal.SIGCONT)
        return pids

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.running():
            self.freeze(False)  # a stopped nginx would not act on SIGTERM
        super().stop(sig, timeout)


class MariaDB(Server):
    """mariadbd with its own datadir, socket and pid file; `@@report_host` names the router.

    `defaults_file` is read as the server's only option file (`--defaults-file`), for an
    example's server settings; without it the server reads none (`--no-defaults`). `read_only`
    adds `--read-only=1`.
    """

    kind = "db"

    def __init__(
        self,
        node: Node,
        workdir: Path,
        port: int = 3306,
        defaults_file: Path | None = None,
        read_only: bool = False,
    ) -> None:
        super().__init__(node, workdir)
        self.port, self.defaults_file, self.read_only = port, defaults_file, read_only
        self.datadir = self.dir / "data"
        self.socket = self.dir / "sock"
        self.pid_file = self.dir / "mariadbd.pid"
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise LabError(f"socket path too long for AF_UNIX: {self.socket}")

    def install(self, template: Path | None = None) -> None:
        """A fresh datadir: a copy of `template` if given (fast), else `mariadb-install-db`.

        root@localhost gets the `normal` (password, here empty) method, so the lab reaches it
        over the socket as any Unix user.
        """
        if template is not None and template.is_dir():
            shutil.copytree(template, self.datadir, symlinks=True)
            return
        install_datadir(self.datadir, self.dir / "install.log")

    def argv(self) -> list[str]:
        defaults = (
            f"--defaults-file={self.defaults_file}" if self.defaults_file else "--no-defaults"
        )
        argv = [
            "mariadbd", defaults, f"--datadir={self.datadir}", f"--socket={self.socket}",
            f"--pid-file={self.pid_file}", f"--log-error={self.dir / 'error.log'}",
            f"--tmpdir={self.dir}", f"--port={self.port}", "--bind-address=0.0.0.0",
            "--skip-networking=0", "--user=root", "--skip-name-resolve",
            f"--report-host={self.node.name}",
            f"--server-id={int(self.node.addr4.ip) & 0xFFFF}",  # unique, as replication wants
            *SMALL_SERVER,
        ]  # fmt: skip
        if self.read_only:
            argv.append("--read-only=1")
        return argv

    def start(self, timeout: float = 20) -> None:
        """Start mariadbd and wait until it answers `SELECT 1` on its socket."""
        self.pid_file.unlink(missing_ok=True)
        self._spawn(self.argv())

        def ready() -> bool:
            self._check_alive()
            return self.query("SELECT 1", check=False) == "1"

        wait_until(ready, timeout, f"mariadbd on {self.node.name} to answer", interval=0.05)

    def query(self, sql: str, check: bool = True) -> str | None:
        """Run SQL as root over the socket; the output without headers (None on error if not
        `check`)."""
        argv = ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B",
                "--connect-timeout=2", "-e", sql]  # fmt: skip
        proc = subprocess.run(
            ns_exec(self.node.ns, *argv), capture_output=True, text=True, timeout=10, check=False
        )
        if proc.returncode != 0:
            if check:
                raise LabError(f"{self.node.name}: {sql!r} failed: {proc.stderr.strip()}")
            return None
        return proc.stdout.strip()

    def source(self, path: Path) -> None:
        """Run an SQL file as root (the client's `source FILE`)."""
        self.query(f"source {path}")


# Small buffers: the lab starts a server per router per test; it is ready in about 0.3 s.
SMALL_SERVER = (
    "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M", "--key-buffer-size=1M",
    "--performance-schema=OFF", "--max-connections=20", "--innodb-use-native-aio=0",
)  # fmt: skip


def install_datadir(datadir: Path, log: Path) -> None:
    """`mariadb-install-db` into `datadir` (about a second); output to `log`."""
    argv = [
        "mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--user=root",
        "--auth-root-authentication-method=normal", "--skip-test-db", *SMALL_SERVER,
    ]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=60, check=False)
    if proc.returncode != 0:
        raise LabError(f"mariadb-install-db failed ({proc.returncode}); see {log}")


def servers_available() -> str | None:
    """None when nginx, mariadbd and their clients are installed, else what is missing."""
    tools = ("nginx", "mariadbd", "mariadb-install-db", "mariadb", "curl")
    missing = [t for t in tools if shutil.which(t) is None and not Path("/usr/sbin", t).exists()]
    return f"missing {', '.join(missing)} (make deps installs them)" if missing else None
