"""HTTP_GET and SSL_GET (keepalived `check_http.c`, `check_ssl.c`): a minimal HTTP/1.0/1.1
client on asyncio streams.

Per `url {}` one connection, one request as keepalived sends it:
`GET PATH HTTP/1.x`, `User-Agent: KeepAliveClient`, `Connection: close` for 1.0C and 1.1,
`Host: VIRTUALHOST` (else the connect address and port); then the response is read to EOF or
Content-Length. The check passes when the status code is in `status_code` (default 200-299)
and, with `digest`, the MD5 of the body bytes equals it (what `genhash` prints; the body is not
de-chunked, as keepalived does not either). SSL_GET sends SNI with `enable_sni` (the
virtualhost, or `sni_name`) and does not verify the server certificate (keepalived's default
without an `SSL { ca }` block). Headers are bounded by `MAX_HEADER_BYTES`, the body by
`MAX_BODY_BYTES`; a bigger or malformed response fails the check. The caller bounds the time.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl

from vrrpd.check.net import Attempt, close_stream, connect_tcp
from vrrpd.config.lvsmodel import CheckerKind, CheckerSpec, HttpParams, UrlSpec

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
READ_CHUNK = 64 * 1024
_STATUS = re.compile(rb"HTTP/1\.[01] +([0-9]{3})(?: |\r\n)")


def tls_context() -> ssl.SSLContext:
    """keepalived's auto-generated client context: no certificate verification."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def request_bytes(spec: CheckerSpec, params: HttpParams, url: UrlSpec) -> bytes:
    """The GET request keepalived sends for `url`."""
    minor = 1 if params.http_protocol == "1.1" else 0
    close = "Connection: close\r\n" if params.http_protocol in ("1.0C", "1.1") else ""
    if url.virtualhost:
        host = url.virtualhost
    else:
        ip = spec.connect_ip
        host = f"[{ip}]" if ip is not None and ip.version == 6 else str(ip)
        host += f":{spec.connect_port}"
    text = (
        f"GET {url.path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}"
        f"Host: {host}\r\n\r\n"
    )
    return text.encode("utf-8", "replace")


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return max(0, int(value.strip()))
            except ValueError:
                return None
    return None


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, str, int] | str:
    """(status code, body MD5 hex, body length), or the reason it is unusable."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        return f"response header larger than {MAX_HEADER_BYTES} bytes"
    except asyncio.IncompleteReadError as exc:
        return "no data received" if not exc.partial else "malformed response (no header end)"
    match = _STATUS.match(head)
    if match is None:
        return "malformed status line"
    length = _content_length(head)
    md5, got = hashlib.md5(usedforsecurity=False), 0
    while length is None or got < length:
        chunk = await reader.read(READ_CHUNK if length is None else min(READ_CHUNK, length - got))
        if not chunk:
            break
        got += len(chunk)
        if got > MAX_BODY_BYTES:
            return f"response body larger than {MAX_BODY_BYTES} bytes"
        md5.update(chunk)
    return int(match.group(1)), md5.hexdigest(), got


async def fetch(spec: CheckerSpec, params: HttpParams, url: UrlSpec) -> Attempt:
    """One URL over a new connection: status code and digest checks."""
    tls = tls_context() if spec.kind is CheckerKind.SSL_GET else None
    sni = (params.sni_name or url.virtualhost) if params.enable_sni else None
    reader, writer = await connect_tcp(spec, tls=tls, server_hostname=sni, limit=MAX_HEADER_BYTES)
    try:
        writer.write(request_bytes(spec, params, url))
        await writer.drain()
        got = await _read_response(reader)
    finally:
        await close_stream(writer)
    if isinstance(got, str):
        return Attempt(False, f"{got} url({url.path})")
    status, digest, _ = got
    if not url.status_ok(status):
        return Attempt(False, f"HTTP status code error ({status}) url({url.path})")
    if url.digest is not None:
        if digest != url.digest:
            return Attempt(False, f"MD5 digest error ({digest}) url({url.path})")
        return Attempt(True, f"MD5 digest success to {{rs}} url({url.path})")
    return Attempt(True, f"HTTP status code success to {{rs}} url({url.path})")


async def http_check(spec: CheckerSpec, timeout_s: float) -> Attempt:
    """Every url in turn, each bounded by `timeout_s`; the first failure decides.
    No url: the server counts as up (keepalived enables it without checking)."""
    assert isinstance(spec.params, HttpParams)
    result = Attempt(True, "no url to check for {rs}")
    for url in spec.params.urls:
        async with asyncio.timeout(timeout_s):
            result = await fetch(spec, spec.params, url)
        if not result.ok:
            return result
    return result
