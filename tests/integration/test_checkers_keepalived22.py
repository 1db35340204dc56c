"""keepalived 2.2's url regex, the `SSL {}` block, UDP_CHECK and FILE_CHECK against real servers.

As in test_checkers.py: the checkers run in the client namespace, nginx in r1, small asyncio
servers in r2 (their sockets opened inside r2), configurations through the real parser, and
every wait polls the checkers' state against a deadline. The TLS files are made with openssl
in tmp_path; the track files live there too and change while the checkers watch them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path

import structlog
from conftest import poll, run_in
from test_checkers import TIMING, by_port, virtual_servers, wait_for
from vrrplab import Lab, in_netns
from vrrplab.netns import sysctl
from vrrplab.services import Nginx

from vrrpd.check import CheckerSet, RsChange
from vrrpd.config.loader import check_config
from vrrpd.config.lvsmodel import VirtualServerSpec
from vrrpd.config.source import MemorySource
from vrrpd.io.files import FileSource
from vrrpd.io.watch import watch_files

PAGE = "hello from r1"


def details(checkers: CheckerSet) -> dict[int, tuple[bool, str]]:
    return {change.rs.port: (change.up, c.last_detail) for change, c in checkers.checkers()}


def test_url_regex_against_nginx(lab: Lab, tmp_path: Path) -> None:
    """The page is matched, not matched, matched only past an offset or within one, caseless;
    regex_no_match turns a match into a failure. alpha: each must earn its UP."""
    r1 = lab.routers[0]
    ip1 = str(r1.addr4.ip)
    Nginx(r1, tmp_path, PAGE).start()

    def url(port: int, body: str) -> str:
        return (f"real_server {ip1} {port} {{\n HTTP_GET {{\n connect_port 80\n url {{\n"
                f" path /\n{body}\n }}\n }}\n }}\n")  # fmt: skip

    vss = virtual_servers(
        url(1, "regex 'from r1$'")
        + url(2, "regex 'from r2'")
        + url(3, "regex 'from r1'\nregex_no_match")
        + url(4, "regex 'from r2'\nregex_no_match")
        + url(5, "regex HELLO\nregex_options caseless")
        + url(6, "regex from\nregex_min_offset 6")
        + url(7, "regex from\nregex_max_offset 5")
    )

    async def scenario() -> CheckerSet:
        checkers = CheckerSet(vss)
        await checkers.start()
        passing, failing = {1, 4, 5, 6}, {2, 3, 7}
        await wait_for(checkers, lambda: all(by_port(checkers)[p].up for p in passing), "up")
        bad = [c for ch, c in checkers.checkers() if ch.rs.port in failing]
        await wait_for(checkers, lambda: all(c.failures >= 2 for c in bad), "failures")
        await checkers.stop()
        return checkers

    got = details(run_in(lab.client.ns, scenario))
    assert {p: up for p, (up, _) in got.items()} == {
        1: True, 2: False, 3: False, 4: True, 5: True, 6: True, 7: False}  # fmt: skip
    assert got[2][1] == "regex did not match url(/)"
    assert got[3][1] == "regex matched (regex_no_match) url(/)"
    assert got[7][1] == "regex did not match url(/)"


def openssl(tmp: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)


def make_tls_files(tmp: Path) -> None:
    """A CA, a client certificate it signed (key encrypted with `s3cret`) and a self-signed
    server certificate the CA knows nothing of."""
    new = ["req", "-newkey", "rsa:2048", "-days", "1"]
    openssl(tmp, *new, "-x509", "-nodes", "-subj", "/CN=lab-ca", "-keyout", "ca.key",
            "-out", "ca.pem")  # fmt: skip
    openssl(tmp, *new, "-subj", "/CN=vrrpd-checker", "-passout", "pass:s3cret", "-keyout",
            "client.key", "-out", "client.csr")  # fmt: skip
    openssl(tmp, "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-out", "client.pem")  # fmt: skip
    openssl(tmp, *new, "-x509", "-nodes", "-subj", "/CN=r1.test", "-keyout", "server.key",
            "-out", "server.pem")  # fmt: skip


def load_file(path: Path, text: str) -> tuple[VirtualServerSpec, ...]:
    path.write_text(text)
    result = check_config(str(path), FileSource())
    assert result.config is not None and not result.errors, result.errors
    return result.config.virtual_servers


def test_ssl_get_presents_the_ssl_blocks_client_certificate(lab: Lab, tmp_path: Path) -> None:
    """nginx demands a client certificate from the CA of the SSL block: SSL_GET passes with the
    block (encrypted key, password) and gets 400 without it. The server's own certificate is
    self-signed, not from that CA: the check still passes (keepalived documents no server
    verification)."""
    r1 = lab.routers[0]
    ip1 = str(r1.addr4.ip)
    make_tls_files(tmp_path)
    snippet = tmp_path / "tls.conf"
    snippet.write_text(
        f"listen 8443 ssl;\nssl_certificate {tmp_path}/server.pem;\n"
        f"ssl_certificate_key {tmp_path}/server.key;\n"
        f"ssl_client_certificate {tmp_path}/ca.pem;\nssl_verify_client on;\n"
        'location = /who { return 200 "client=$ssl_client_s_dn\\n"; }\n'
    )
    Nginx(r1, tmp_path, PAGE, includes=(snippet,)).start()
    check = (f"virtual_server 192.0.2.100 443 {{\n{TIMING}real_server {ip1} 8443 {{\n"
             " SSL_GET {\n url {\n path /who\n regex ^client=CN=vrrpd-checker$\n"
             " regex_options multiline\n }\n }\n }\n}\n")  # fmt: skip
    ssl_block = (f"SSL {{\n password s3cret\n ca {tmp_path}/ca.pem\n certificate "
                 f"{tmp_path}/client.pem\n key {tmp_path}/client.key\n}}\n")  # fmt: skip
    with_block = load_file(tmp_path / "with.conf", ssl_block + check)
    without = load_file(tmp_path / "without.conf", check)

    async def scenario() -> tuple[CheckerSet, CheckerSet]:
        good, bad = CheckerSet(with_block), CheckerSet(without)
        await good.start()
        await bad.start()
        await wait_for(good, lambda: good.states()[0].up, "SSL_GET with a client certificate")
        await wait_for(bad, lambda: bad.checkers()[0][1].failures >= 2, "SSL_GET without")
        await good.stop()
        await bad.stop()
        return good, bad

    good, bad = run_in(lab.client.ns, scenario)
    assert good.states()[0].up and not bad.states()[0].up
    assert bad.checkers()[0][1].last_detail == "HTTP status code error (400) url(/who)"


class Udp(asyncio.DatagramProtocol):
    """Echoes every datagram back, unless `silent`."""

    def __init__(self, silent: bool) -> None:
        self.silent, self.received = silent, 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        if not self.silent:
            self.transport.sendto(data, addr)  # type: ignore[attr-defined]


async def serve_udp(ns: str, ip: str, port: int, silent: bool = False) -> Udp:
    with in_netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((ip, port))
    _, proto = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: Udp(silent), sock=sock
    )
    return proto


def test_udp_check_against_echo_silent_and_closed_ports(lab: Lab) -> None:
    """An echo server passes require_reply (x nibbles) and fails a reply pattern it does not
    match; a closed port fails by ICMP port unreachable; a silent server passes without
    require_reply (no ICMP error within connect_timeout) and fails with it."""
    r2 = lab.routers[1]
    ip2 = str(r2.addr4.ip)
    # the kernel rate-limits port unreachables (1/s per peer): a limited one would read as
    # "no ICMP error", i.e. as a success, and make the closed port flap
    sysctl(r2.ns, "net.ipv4.icmp_ratelimit", 0)

    def udp(port: int, body: str) -> str:
        return (f"real_server {ip2} {port} {{\n UDP_CHECK {{\n connect_timeout 0.5\n"
                f"{body}\n }}\n }}\n")  # fmt: skip

    body = (
        udp(5401, "payload de ad be ef\nrequire_reply DEADxxEF\nmin_reply_length 4")
        + udp(5402, "payload de ad\nrequire_reply DEAF")
        + udp(5403, "payload 01")
        + udp(5404, "")
        + udp(5405, "require_reply")
    )
    text = f"virtual_server 192.0.2.100 53 {{\n{TIMING.replace('TCP', 'UDP')}{body}}}\n"
    result = check_config("/k.conf", MemorySource({"/k.conf": text}))
    assert result.config is not None and not result.errors, result.errors

    async def scenario() -> tuple[CheckerSet, list[Udp]]:
        servers = [await serve_udp(r2.ns, ip2, p) for p in (5401, 5402)]
        servers += [await serve_udp(r2.ns, ip2, p, silent=True) for p in (5404, 5405)]
        checkers = CheckerSet(result.config.virtual_servers)  # type: ignore[union-attr]
        await checkers.start()
        await wait_for(checkers, lambda: by_port(checkers)[5401].up and by_port(checkers)[5404].up,
                       "echo and silent server up")  # fmt: skip
        bad = [c for ch, c in checkers.checkers() if ch.rs.port in (5402, 5403, 5405)]
        await wait_for(checkers, lambda: all(c.failures >= 4 for c in bad), "failures")
        await checkers.stop()
        return checkers, servers

    checkers, servers = run_in(lab.client.ns, scenario)
    got = details(checkers)
    assert {p: up for p, (up, _) in got.items()} == {
        5401: True, 5402: False, 5403: False, 5404: True, 5405: False}  # fmt: skip
    assert got[5402][1] == "reply differs from require_reply at byte 1"
    assert got[5403][1] == "ICMP port unreachable"
    assert got[5404][1] == "no ICMP error within connect_timeout"
    assert got[5405][1] == "no reply (timeout)"
    assert all(s.received >= 1 for s in servers)


def write(path: Path, value: str | None) -> None:
    """Replace the file as a careful writer does (a rename, so no reader sees it half done);
    None removes it."""
    if value is None:
        path.unlink()
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value)
    os.replace(tmp, path)


def test_file_check_follows_its_track_file(tmp_path: Path) -> None:
    """weight 0: the real server is down while the file holds a non-zero value (init_file
    writes 1 at start); a dynamic weighted FILE_CHECK moves the weight with the value; a
    removed file reads as 0. The watch is io.watch's inotify one."""
    switch, load = tmp_path / "switch", tmp_path / "load"
    load.write_text("2\n")
    text = (
        f"track_file switch {{\n file {switch}\n weight 0\n init_file 1\n}}\n"
        f"track_file load {{\n file {load}\n}}\n"
        f"virtual_server 192.0.2.100 80 {{\n{TIMING}"
        "real_server 192.0.2.21 80 {\n FILE_CHECK {\n track_file switch\n }\n }\n"
        "real_server 192.0.2.22 80 {\n weight 10\n FILE_CHECK {\n track_file load\n weight 3\n"
        " dynamic\n }\n }\n}\n"
    )
    vss = load_file(tmp_path / "k.conf", text)
    changes: list[RsChange] = []

    def states(checkers: CheckerSet) -> list[tuple[bool, int]]:
        return [(s.up, s.weight) for s in checkers.states()]

    async def scenario() -> list[tuple[bool, int]]:
        checkers = CheckerSet(vss, changes.append, file_watcher=watch_files)
        first = states(checkers)  # as read before any check ran
        await checkers.start()
        steps = [
            (switch, "0", [(True, 1), (True, 16)]),
            (load, "5", [(True, 1), (True, 25)]),
            (switch, "7", [(False, 1), (True, 25)]),
            (load, None, [(False, 1), (True, 10)]),
        ]
        for path, value, want in steps:
            write(path, value)
            await poll(lambda: states(checkers) == want, 10, f"{path.name}={value}")  # noqa: B023
        await checkers.stop()
        return first

    with structlog.testing.capture_logs() as logs:
        first = asyncio.run(scenario())
    assert first == [(False, 1), (True, 16)]
    assert switch.read_text() == "7"
    assert [(c.rs.port, c.up) for c in changes if c.rs.address.packed[-1] == 21] == [
        (80, True), (80, False)]  # fmt: skip
    events = [str(e["event"]) for e in logs]
    assert ("FILE_CHECK on service [192.0.2.21]:tcp:80 of VS [192.0.2.100]:tcp:80: track file "
            "switch value 0 - up") in events  # fmt: skip
    assert "Removing service [192.0.2.21]:tcp:80 from VS [192.0.2.100]:tcp:80" in events
