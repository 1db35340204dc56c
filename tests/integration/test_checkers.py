"""The LVS health checkers against real servers in namespaces.

The checkers run in the client namespace (the director's seat); nginx runs in r1, small asyncio
servers (a TCP listener, an SMTP banner server, a DNS responder and misbehaving servers) in r2,
their sockets opened inside r2. The configuration goes through the real keepalived.conf parser.
Every test polls the checkers' state against a deadline; none sleeps for a condition.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog
from conftest import poll, run_in, wait_until
from vrrplab import Lab, in_netns
from vrrplab.services import Nginx

from vrrpd.check import CheckerSet, LvsNotifier, RsChange
from vrrpd.config.loader import check_config
from vrrpd.config.lvsmodel import VirtualServerSpec, rs_label
from vrrpd.config.source import MemorySource

PAGE = "hello from r1"
TIMING = """
    protocol TCP
    lvs_sched rr
    lvs_method DR
    alpha
    delay_loop 0.3
    connect_timeout 1
    warmup 0
    retry 1
    delay_before_retry 0.1
"""


def virtual_servers(body: str) -> tuple[VirtualServerSpec, ...]:
    text = f"virtual_server 192.0.2.100 80 {{\n{TIMING}{body}}}\n"
    result = check_config("/k.conf", MemorySource({"/k.conf": text}))
    assert result.config is not None and not result.errors, result.errors
    return result.config.virtual_servers


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# -- small servers, opened inside a namespace ----------------------------------------------------
async def serve_tcp(ns: str, ip: str, port: int, handler: Callable[..., object]) -> asyncio.Server:
    with in_netns(ns):
        sock = socket.create_server((ip, port))
    return await asyncio.start_server(handler, sock=sock)  # type: ignore[arg-type]


async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and never answer."""
    await reader.read()
    writer.close()


def smtp_server(helos: list[bytes]) -> Callable[..., object]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220-r2 ESMTP lab\r\n220 ready\r\n")
        helos.append(await reader.readline())
        writer.write(b"250 r2 hello\r\n")
        await reader.readline()
        writer.write(b"221 bye\r\n")
        await writer.drain()
        writer.close()

    return handle


async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Headers, then an endless body until the client goes away."""
    writer.write(b"HTTP/1.0 200 OK\r\n\r\n")
    try:
        while True:
            writer.write(b"x" * 65536)
            await writer.drain()
    except (ConnectionError, OSError):
        writer.close()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"garbage\r\n\r\n")
    await writer.drain()
    writer.close()


class Dns(asyncio.DatagramProtocol):
    """Answers every query NOERROR with one A record, unless `silent`."""

    def __init__(self, silent: bool = False) -> None:
        self.silent, self.queries = silent, 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries += 1
        if self.silent or len(data) < 12:
            return
        question = data[12:]
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.99")
        header = data[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
        self.transport.sendto(header + question + answer, addr)  # type: ignore[attr-defined]


async def serve_dns(ns: str, ip: str, port: int, silent: bool = False) -> Dns:
    loop = asyncio.get_running_loop()
    with in_netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((ip, port))
    _, proto = await loop.create_datagram_endpoint(lambda: Dns(silent), sock=sock)
    return proto


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


def by_port(checkers: CheckerSet) -> dict[int, RsChange]:
    return {s.rs.port: s for s in checkers.states()}


async def wait_for(checkers: CheckerSet, predicate: Callable[[], object], what: str) -> None:
    """`poll` with a deadline; on a timeout the message shows every checker's last result."""
    try:
        await poll(predicate, 15, what)
    except AssertionError as exc:
        rows = [(ch.rs.port, ch.up, c.spec.kind.value, c.attempts, c.last_detail)
                for ch, c in checkers.checkers()]  # fmt: skip
        raise AssertionError(f"{exc}; checkers: {rows}") from None


# -- the tests -------------------------------------------------------------------------------------
def test_every_checker_type_against_real_servers(lab: Lab, tmp_path: Path) -> None:
    """alpha: every real server starts down and must come up by passing its check; then nginx
    and the TCP listener go away and exactly those servers are removed (notify + FIFO)."""
    r1, r2 = lab.routers
    ip1, ip2 = str(r1.addr4.ip), str(r2.addr4.ip)
    nginx = Nginx(r1, tmp_path, PAGE)
    nginx.start()
    notes = tmp_path / "notes"
    notify = script(tmp_path / "notify.sh", f'echo "$1" >> {notes}')
    misc = script(tmp_path / "misc.sh", 'exit "$1"')
    vss = virtual_servers(f"""
    real_server {ip1} 80 {{
        notify_up "{notify} http-up"
        notify_down "{notify} http-down"
        HTTP_GET {{
            url {{
                path /
                digest {md5(PAGE + chr(10))}
            }}
            url {{
                path /nothing-here
                status_code 400-499
            }}
        }}
    }}
    real_server {ip2} 7000 {{
        TCP_CHECK {{ }}
    }}
    real_server {ip2} 2525 {{
        SMTP_CHECK {{
            helo_name director.test
        }}
    }}
    real_server {ip2} 5300 {{
        DNS_CHECK {{
            type A
            name www.example.test
        }}
    }}
    real_server {ip1} 9 {{
        PING_CHECK {{ }}
    }}
    real_server {ip2} 9000 {{
        MISC_CHECK {{
            misc_path "{misc} 12"
            misc_dynamic
        }}
    }}
""")
    changes: list[RsChange] = []
    fifo: list[str] = []
    helos: list[bytes] = []

    async def scenario() -> list[dict[str, object]]:
        tcp = await serve_tcp(r2.ns, ip2, 7000, hold)
        await serve_tcp(r2.ns, ip2, 2525, smtp_server(helos))
        dns = await serve_dns(r2.ns, ip2, 5300)
        notifier = LvsNotifier(fifo.append)
        checkers = CheckerSet(vss, changes.append, notifier=notifier)
        with structlog.testing.capture_logs() as logs:
            assert not any(s.up for s in checkers.states())  # alpha
            await checkers.start()
            await wait_for(checkers, lambda: all(s.up for s in checkers.states()), "all up")
            assert by_port(checkers)[9000].weight == 10  # misc_dynamic: exit 12 -> 10
            tcp.close()
            await asyncio.to_thread(nginx.stop)
            await poll(lambda: not by_port(checkers)[80].up and not by_port(checkers)[7000].up,
                       15, "HTTP and TCP servers down")  # fmt: skip
            await poll(lambda: notes.exists() and "http-down" in notes.read_text(), 5, "notify")
            await checkers.stop()
            await notifier.close()
        assert dns.queries >= 1
        return logs

    logs = run_in(lab.client.ns, scenario)
    states = {c.rs.port: c.up for c in changes}
    assert states == {80: False, 7000: False, 2525: True, 5300: True, 9: True, 9000: True}
    assert helos and helos[0] == b"HELO director.test\r\n"
    assert notes.read_text().split() == ["http-up", "http-down"]
    vs = vss[0]
    http_rs = vs.real_servers[0]
    assert fifo.count(f"RS {rs_label(vs, http_rs)} [192.0.2.100]:tcp:80 UP\n") == 1
    assert f"RS {rs_label(vs, http_rs)} [192.0.2.100]:tcp:80 DOWN\n" in fifo
    events = [str(e["event"]) for e in logs]
    assert f"TCP connection to [{ip2}]:tcp:7000 success." in events
    assert f"Adding service [{ip2}]:tcp:7000 to VS [192.0.2.100]:tcp:80" in events
    assert f"Removing service [{ip2}]:tcp:7000 from VS [192.0.2.100]:tcp:80" in events
    assert f"TCP_CHECK on service [{ip2}]:tcp:7000 failed after 1 retries." in events
    assert f"ICMP connection to [{ip1}]:tcp:9 success." in events
    assert f"Remote SMTP server [{ip2}]:tcp:2525 succeed on service." in events
    assert f"HTTP status code success to [{ip1}]:tcp:80 url(/nothing-here)" in events
    assert any(e.startswith("Changing weight from 1 to 10 for inactive service") for e in events)


def test_bad_servers_fail_without_blocking(lab: Lab, tmp_path: Path) -> None:
    """A server that accepts and never answers, a huge and a malformed HTTP response, a DNS
    server that never answers, an SMTP server that never greets, an unreachable address and a
    hanging MISC script: each fails for its own reason, a healthy checker keeps passing and the
    event loop never stalls."""
    r2 = lab.routers[1]
    ip2 = str(r2.addr4.ip)
    pids = tmp_path / "hang.pids"
    hang = script(tmp_path / "hang.sh", f"sleep 30 &\necho $$ $! >> {pids}\nwait")

    def http(port: int) -> str:
        return f"real_server {ip2} {port} {{\n HTTP_GET {{\n url {{\n path /\n }}\n }}\n }}\n"

    vss = virtual_servers(f"""
{http(7001)}{http(7002)}{http(7003)}
    real_server {ip2} 7004 {{
        SMTP_CHECK {{ }}
    }}
    real_server {ip2} 5301 {{
        DNS_CHECK {{ }}
    }}
    real_server 192.0.2.250 80 {{
        TCP_CHECK {{ }}
    }}
    real_server {ip2} 9001 {{
        MISC_CHECK {{
            misc_path {hang}
            misc_timeout 0.5
        }}
    }}
    real_server {ip2} 7005 {{
        TCP_CHECK {{ }}
    }}
""")

    async def scenario() -> tuple[CheckerSet, float]:
        for port, handler in ((7001, hold), (7002, huge), (7003, garbage), (7004, hold)):
            await serve_tcp(r2.ns, ip2, port, handler)
        await serve_tcp(r2.ns, ip2, 7005, hold)
        await serve_dns(r2.ns, ip2, 5301, silent=True)
        checkers = CheckerSet(vss)
        loop = asyncio.get_running_loop()
        worst = 0.0

        async def ticker() -> None:
            nonlocal worst
            while True:
                before = loop.time()
                await asyncio.sleep(0.01)
                worst = max(worst, loop.time() - before)

        tick = asyncio.create_task(ticker())
        await checkers.start()
        bad = [c for change, c in checkers.checkers() if change.rs.port != 7005]
        await poll(lambda: all(c.failures >= 4 for c in bad), 30, "two rounds of failures")
        tick.cancel()
        await checkers.stop()
        return checkers, worst

    checkers, worst = run_in(lab.client.ns, scenario)
    details = {change.rs.port: (change.up, c.last_detail, c.attempts)
               for change, c in checkers.checkers()}  # fmt: skip
    assert details[7005][0] and details[7005][2] >= 4  # the healthy one kept being checked
    assert {p: d[0] for p, d in details.items() if p != 7005} == dict.fromkeys(
        (7001, 7002, 7003, 7004, 5301, 80, 9001), False)  # fmt: skip
    assert details[7001][1] == "timeout"
    assert details[7002][1] == "response body larger than 8388608 bytes url(/)"
    assert details[7003][1] == "malformed status line url(/)"
    assert details[7004][1] == "timeout"
    assert details[5301][1] == "timeout"
    assert details[80][1] in ("timeout", "no route to host")
    assert details[9001][1] == "timed out"
    assert worst < 0.5, f"the event loop stalled for {worst:.3f} s"
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) >= 4  # two runs at least, each a shell and its sleep
    # each hanging script was killed with its whole process group (the orphaned sleep too)
    wait_until(lambda: not any(running(p) for p in started), 5, "no script left")


def test_ssl_get_with_sni_and_status_codes(lab: Lab, tmp_path: Path) -> None:
    """SSL_GET against nginx over TLS: the page shows the SNI name nginx saw, so the digest
    passes only when `enable_sni` sends `virtualhost`; HTTP_GET status_code sets and 1.1."""
    r1 = lab.routers[0]
    ip1 = str(r1.addr4.ip)
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=a.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    snippet = tmp_path / "tls.conf"
    snippet.write_text(
        f"listen 8443 ssl;\nssl_certificate {cert};\nssl_certificate_key {key};\n"
        'location = /sni { return 200 "sni=$ssl_server_name\\n"; }\n'
    )
    nginx = Nginx(r1, tmp_path, PAGE, includes=(snippet,))
    nginx.start()

    sni_page = md5("sni=a.test\n")
    vss = virtual_servers(f"""
    real_server {ip1} 8443 {{
        SSL_GET {{
            enable_sni
            url {{
                path /sni
                digest {sni_page}
                virtualhost a.test
            }}
        }}
    }}
    real_server {ip1} 80 {{
        HTTP_GET {{
            http_protocol 1.1
            url {{
                path /none
                status_code 200 400-499
            }}
        }}
    }}
""")
    vss_bad = virtual_servers(f"""
    real_server {ip1} 8443 {{
        SSL_GET {{
            url {{
                path /sni
                digest {sni_page}
            }}
        }}
    }}
    real_server {ip1} 80 {{
        HTTP_GET {{
            url {{
                path /none
            }}
        }}
    }}
""")

    async def scenario() -> tuple[list[RsChange], list[RsChange], str]:
        good, bad = CheckerSet(vss), CheckerSet(vss_bad)
        await good.start()
        await bad.start()
        await poll(lambda: all(s.up for s in good.states()), 15, "SNI and 404 checks up")
        await poll(lambda: all(c.failures >= 2 for _, c in bad.checkers()), 15, "bad checks")
        detail = bad.checkers()[0][1].last_detail
        await good.stop()
        await bad.stop()
        return good.states(), bad.states(), detail

    good, bad, detail = run_in(lab.client.ns, scenario)
    nginx.stop()
    assert [s.up for s in good] == [True, True]
    assert [s.up for s in bad] == [False, False]
    assert detail == f"MD5 digest error ({md5('sni=' + chr(10))}) url(/sni)"


@pytest.mark.parametrize("lab", [1], indirect=True)
def test_ping_check_over_ipv6(lab: Lab) -> None:
    """PING_CHECK with ICMPv6 (raw socket: a new namespace does not allow ping sockets)."""
    target = str(lab.routers[0].addr6.ip)
    text = (
        f"virtual_server 2001:db8::100 80 {{\n{TIMING}real_server {target} 80 {{\n"
        " PING_CHECK { }\n }\n real_server 2001:db8::fe 80 {\n PING_CHECK { }\n }\n}\n"
    )
    result = check_config("/k.conf", MemorySource({"/k.conf": text}))
    assert result.config is not None and not result.errors

    async def scenario() -> list[RsChange]:
        checkers = CheckerSet(result.config.virtual_servers)  # type: ignore[union-attr]
        await checkers.start()
        await poll(lambda: checkers.states()[0].up, 10, "ICMPv6 echo reply")
        await poll(lambda: all(c.failures >= 2 for _, c in checkers.checkers()[1:]), 10, "loss")
        await checkers.stop()
        return checkers.states()

    assert [s.up for s in run_in(lab.client.ns, scenario)] == [True, False]
