"""The examples in examples/ run for real: nginx and MariaDB in the router namespaces, behind the
VIP, with the example's own keepalived.conf and scripts, under keepalived and under vrrpd.

How the lab uses an example (the only changes, see examples/*/README.md "In the lab"):
- the example directory is copied to `<workdir>/<router>/etc/` (root-owned, scripts 0755, MariaDB
  option file 0600), because keepalived's script security refuses scripts on paths other users
  could write, and its keepalived.conf is read with two path prefixes moved there:
  `/etc/keepalived/<example>/` to the copy and `/var/log/keepalived/` to `<workdir>/<router>/log/`;
- the interface (eth0) and the addresses (VIP 192.0.2.100, routers 192.0.2.11 and .12, client
  192.0.2.2) are the lab's own, so they are used as written;
- the per-host lines (`@lb1`, `@db2`, ...) are selected with `-i HOST`, as on hosts whose names
  are not lb1/lb2.
Waits poll with deadlines; the services are stopped by PID.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import wait_until
from vrrplab.netns import ns_exec
from vrrplab.procs import IMPLS, RouterProcess
from vrrplab.services import MariaDB, Nginx, install_datadir, servers_available
from vrrplab.topo import Lab, Node

from vrrpd.cli import main as vrrpd_main
from vrrpd.config.dump import strip_locations
from vrrpd.config.loader import load_config
from vrrpd.io.files import FileSource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VIP = "192.0.2.100"
CHECK_ARGV = {"keepalived": ["keepalived"], "vrrpd": [sys.executable, "-m", "vrrpd"]}
# Script security refusals (keepalived's and vrrpd's texts) and crashes.
BAD_LOG = ("Traceback", "SECURITY", "Unsafe permissions", "disabling", "Disabling", "not found")

needs_servers = pytest.mark.skipif(servers_available() is not None, reason=str(servers_available()))
IMPL_PARAMS = [
    pytest.param("keepalived", marks=pytest.mark.skipif(not shutil.which("keepalived"),
                                                        reason="keepalived missing")),
    "vrrpd",
]  # fmt: skip


# -- the examples' configuration files -----------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "host"), [("nginx", "lb1"), ("nginx", "lb2"), ("mysql", "db1"), ("mysql", "db2")]
)
def test_yaml_form_loads_the_same_model_as_keepalived_conf(
    example: str, host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`HOST.yaml` means what `keepalived.conf -i HOST` does, and `vrrpd -t` accepts both once
    installed (scripts where the files say: a copy with the lab's two path prefixes).

    (`vrrpd.cli.main` in-process: the code `vrrpd -t` runs, without a second of start-up.)"""
    conf, yaml = EXAMPLES / example / "keepalived.conf", EXAMPLES / example / f"{host}.yaml"
    from_conf, warnings_conf = load_config(str(conf), FileSource(), host)
    from_yaml, warnings_yaml = load_config(str(yaml), FileSource())
    assert (warnings_conf, warnings_yaml) == ([], [])
    assert strip_locations(from_conf) == strip_locations(from_yaml)
    assert from_conf.instances[0].priority == (150 if host.endswith("1") else 100)

    etc = install_copy(example, tmp_path / "etc")
    for path, id_args in ((etc / conf.name, ["-i", host]), (etc / yaml.name, [])):
        path.write_text(lab_paths(path.read_text(), example, etc, tmp_path / "log"))
        argv = ["-t", *id_args, "-f", str(path)]
        assert (vrrpd_main(argv), capsys.readouterr().err) == (0, ""), f"vrrpd {' '.join(argv)}"


# -- putting an example on a lab router ------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    """An example installed on one lab router, as `host` (lb1, db2, ...)."""

    node: Node
    host: str
    conf: str  # the example's keepalived.conf with the two lab path prefixes
    etc: Path  # the copy of the example directory (/etc/keepalived/<example>/ on a real host)
    notify_log: Path


def install_copy(example: str, etc: Path) -> Path:
    """examples/EXAMPLE copied to `etc` as the README installs it: scripts 0755, option files
    0600 (they hold passwords; git keeps no such mode)."""
    shutil.copytree(EXAMPLES / example, etc)
    for f in etc.iterdir():
        f.chmod(0o600 if f.suffix == ".cnf" else 0o755 if f.suffix == ".sh" else 0o644)
    return etc


def lab_paths(text: str, example: str, etc: Path, log: Path) -> str:
    """Move the two path prefixes: `/etc/keepalived/EXAMPLE/` and `/var/log/keepalived/`."""
    etc_prefix = f"/etc/keepalived/{example}/"
    assert etc_prefix in text and "/var/log/keepalived/" in text, "the lab rewrites these"
    return text.replace(etc_prefix, f"{etc}/").replace("/var/log/keepalived/", f"{log}/")


def deploy(example: str, lab: Lab, hosts: tuple[str, str]) -> list[Deployed]:
    """The example installed on each router, with its keepalived.conf using the lab paths."""
    deployed = []
    for node, host in zip(lab.routers, hosts, strict=True):
        etc = install_copy(example, lab.workdir / node.name / "etc")
        log = lab.workdir / node.name / "log"
        text = lab_paths((etc / "keepalived.conf").read_text(), example, etc, log)
        deployed.append(Deployed(node, host, text, etc, log / f"{example}-vip.log"))
    return deployed


def start_routers(lab: Lab, impl: str, deployed: list[Deployed]) -> list[RouterProcess]:
    """`IMPL -t` passes on each router's copy, then IMPL runs it on each router in turn.

    r1 runs before r2 starts, so r1's Master_Down timer starts first and the election is r1's
    at once, as the exact notify lines expect (a slow start of r1 under load could otherwise
    let r2 be MASTER for a moment)."""
    procs = []
    for d in deployed:
        proc = RouterProcess(d.node, impl, d.conf, lab.workdir, argv=[*IMPLS[impl], "-i", d.host])
        argv = [*CHECK_ARGV[impl], "-t", "-i", d.host, "-f", str(proc.conf)]
        check = subprocess.run(ns_exec(d.node.ns, *argv), capture_output=True, text=True,
                               check=False, timeout=30)  # fmt: skip
        assert check.returncode == 0, f"{impl} -t on {d.node.name}: {check.stdout}{check.stderr}"
        procs.append(proc)
    for p in procs:
        p.start()
        p.wait_started()
    return procs


def curl(lab: Lab, url: str) -> str | None:
    """The body the client gets from URL (1 s deadline), None if the request fails."""
    argv = ns_exec(lab.client.ns, "curl", "-fsS", "--max-time", "1", url)
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    return out.stdout if out.returncode == 0 else None


def notify_lines(log: Path) -> list[str]:
    """The notify log without its timestamps: `TYPE NAME STATE PRIORITY` per transition."""
    if not log.exists():
        return []
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines()]


def assert_clean(procs: list[RouterProcess]) -> None:
    for p in procs:
        bad = [ln for ln in p.output().splitlines() if any(m in ln for m in BAD_LOG)]
        assert not bad, f"{p.node.name} ({p.impl}) logged: {bad[:3]}"


def stop_all(procs: list[RouterProcess]) -> None:
    for p in procs:
        if p.running():
            p.sigterm()


# -- nginx -----------------------------------------------------------------------------------


@needs_servers
@pytest.mark.parametrize("impl", IMPL_PARAMS)
def test_nginx_example_moves_the_vip_when_nginx_stops_answering(lab: Lab, impl: str) -> None:
    """lb1 serves through the VIP; its nginx hangs (every process still exists) so its status
    check times out, lb1 drops to 90 and lb2 serves; nginx recovers and lb1 preempts back."""
    deployed = deploy("nginx", lab, ("lb1", "lb2"))
    logs = [d.notify_log for d in deployed]
    web = {d.node.name: Nginx(d.node, lab.workdir, page=f"page from {d.node.name}",
                              includes=(d.etc / "nginx-status.conf",))
           for d in deployed}  # fmt: skip
    procs: list[RouterProcess] = []
    try:
        for w in web.values():
            w.start()
            assert w.get("/nginx_status") is not None  # the example's status location
        procs = start_routers(lab, impl, deployed)
        url = f"http://{VIP}/"
        wait_until(lambda: lab.owners(VIP) == ["r1"], 15, "r1 (lb1, 150) to hold the VIP")
        wait_until(lambda: curl(lab, url) == "page from r1\n", 5, "the client to get r1's page")

        frozen = web["r1"].freeze()
        assert all(Path(f"/proc/{pid}").exists() for pid in frozen)  # a pidof check would pass
        wait_until(lambda: lab.owners(VIP) == ["r2"], 20, "r2 to take the VIP from hung r1")
        wait_until(lambda: curl(lab, url) == "page from r2\n", 5, "the client to get r2's page")

        web["r1"].freeze(False)
        wait_until(lambda: lab.owners(VIP) == ["r1"], 20, "r1 to preempt back once nginx answers")
        wait_until(lambda: curl(lab, url) == "page from r1\n", 5, "the client back on r1")

        assert "(VI_WEB) Changing effective priority from 150 to 90" in procs[0].output()
        assert "(VI_WEB) Changing effective priority from 90 to 150" in procs[0].output()
        wait_until(lambda: len(notify_lines(logs[0])) >= 4, 5, "r1's last notify line")
        wait_until(lambda: len(notify_lines(logs[1])) >= 3, 5, "r2's last notify line")
        assert notify_lines(logs[0]) == [
            "INSTANCE VI_WEB BACKUP 150", "INSTANCE VI_WEB MASTER 150",
            "INSTANCE VI_WEB BACKUP 90", "INSTANCE VI_WEB MASTER 150",
        ]  # fmt: skip
        assert notify_lines(logs[1]) == [
            "INSTANCE VI_WEB BACKUP 100", "INSTANCE VI_WEB MASTER 100",
            "INSTANCE VI_WEB BACKUP 100",
        ]  # fmt: skip
        assert_clean(procs)
    finally:
        stop_all(procs)
        for w in web.values():
            w.stop()


# -- MariaDB ---------------------------------------------------------------------------------

APP_SQL = """
CREATE DATABASE app;
CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, via VARCHAR(16));
CREATE USER 'app'@'192.0.2.%' IDENTIFIED BY 'app-pass';
GRANT SELECT, INSERT ON app.* TO 'app'@'192.0.2.%';
"""


@pytest.fixture(scope="module")
def datadir_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `mariadb-install-db` per module; each router copies it (a datadir per router)."""
    root = tmp_path_factory.mktemp("mariadb-template")
    install_datadir(root / "data", root / "install.log")
    return root / "data"


def app_sql(lab: Lab, host: str, sql: str) -> tuple[int, str]:
    """Run SQL from the client as the application would: user `app`, TCP to HOST."""
    argv = ["mariadb", "--no-defaults", "-h", host, "-u", "app", "-papp-pass", "-N", "-B",
            "--connect-timeout=1", "-e", sql]  # fmt: skip
    out = subprocess.run(ns_exec(lab.client.ns, *argv), capture_output=True, text=True,
                         check=False, timeout=10)  # fmt: skip
    return out.returncode, (out.stdout + out.stderr).strip()


def writes_to(lab: Lab, host: str) -> str:
    """The router that served an INSERT through HOST, or the error the client got."""
    rc, out = app_sql(lab, host, "INSERT INTO app.t (via) VALUES (@@report_host); "
                                 "SELECT via FROM app.t ORDER BY id DESC LIMIT 1")  # fmt: skip
    return out if rc == 0 else f"error: {out}"


def hook_lines(log: Path) -> list[str]:
    """notify_mysql.sh lines without the time and without the error text of a failed statement."""
    return [line.split(" (exit")[0] for line in notify_lines(log)]


@needs_servers
@pytest.mark.parametrize("impl", IMPL_PARAMS)
def test_mysql_example_moves_the_vip_and_the_writable_primary(
    lab: Lab, impl: str, datadir_template: Path
) -> None:
    """db1 is the writable primary behind the VIP and db2 is read-only (the notify hooks ran);
    mariadbd on db1 is killed, db1 goes to FAULT and db2 takes the VIP and becomes writable;
    db1's server comes back read-only, db1 preempts and becomes the writable primary again."""
    r2 = lab.routers[1]
    deployed = deploy("mysql", lab, ("db1", "db2"))
    logs = [d.notify_log for d in deployed]
    dbs = {d.node.name: MariaDB(d.node, lab.workdir, defaults_file=d.etc / "server.cnf")
           for d in deployed}  # fmt: skip
    procs: list[RouterProcess] = []
    try:
        for d, db in zip(deployed, dbs.values(), strict=True):
            assert stat.S_IMODE((d.etc / "client.cnf").stat().st_mode) == 0o600
            db.install(template=datadir_template)
            db.start()
            db.source(d.etc / "users.sql")
            db.query(APP_SQL)
            # server.cnf's read_only=ON: nothing is writable before a MASTER notify
            assert db.query("SELECT @@read_only, @@report_host") == f"1\t{d.node.name}"
        procs = start_routers(lab, impl, deployed)

        wait_until(lambda: lab.owners(VIP) == ["r1"], 15, "r1 (db1, 150) to hold the VIP")
        wait_until(lambda: writes_to(lab, VIP) == "r1", 5, "writes through the VIP to land on r1")
        assert dbs["r2"].query("SELECT @@read_only") == "1"
        assert "read-only" in writes_to(lab, str(r2.addr4.ip))  # db2 refuses writes itself

        dbs["r1"].kill()
        wait_until(lambda: lab.owners(VIP) == ["r2"], 15, "r2 to take the VIP from r1's dead DB")
        wait_until(lambda: writes_to(lab, VIP) == "r2", 5, "writes through the VIP to land on r2")
        wait_until(lambda: procs[0].state() == "FAULT", 5, "r1 to log FAULT")

        dbs["r1"].start()  # read_only=ON from server.cnf until the hook says otherwise
        wait_until(lambda: lab.owners(VIP) == ["r1"], 20, "r1 to preempt once its DB answers")
        wait_until(lambda: writes_to(lab, VIP) == "r1", 5, "writes through the VIP back on r1")
        wait_until(lambda: dbs["r2"].query("SELECT @@read_only") == "1", 5, "r2 read-only again")
        wait_until(lambda: len(hook_lines(logs[0])) >= 5, 5, "r1's last hook line")
        wait_until(lambda: len(hook_lines(logs[1])) >= 3, 5, "r2's last hook line")

        assert hook_lines(logs[0]) == [
            "INSTANCE VI_DB BACKUP 150 read_only=1 ok", "INSTANCE VI_DB MASTER 150 read_only=0 ok",
            "INSTANCE VI_DB FAULT 150 read_only=1 failed",
            "INSTANCE VI_DB BACKUP 150 read_only=1 ok", "INSTANCE VI_DB MASTER 150 read_only=0 ok",
        ]  # fmt: skip
        assert hook_lines(logs[1]) == [
            "INSTANCE VI_DB BACKUP 100 read_only=1 ok", "INSTANCE VI_DB MASTER 100 read_only=0 ok",
            "INSTANCE VI_DB BACKUP 100 read_only=1 ok",
        ]  # fmt: skip
        assert_clean(procs)
    finally:
        stop_all(procs)
        for db in dbs.values():
            db.stop()
