"""HTTP_GET and SSL_GET (keepalived `check_http.c`, `check_ssl.c`): a minimal HTTP/1.0/1.1
client on asyncio streams.

Per `url {}` one connection, one request as keepalived sends it:
`GET PATH HTTP/1.x`, `User-Agent: KeepAliveClient`, `Connection: close` for 1.0C and 1.1,
`Host: VIRTUALHOST` (else the connect address and port); then the response is read to EOF or
Content-Length. The check passes when the status code is in `status_code` (default 200-299),
with `regex` when the body matches it (`regex_no_match`: when it does not; see `body_matches`)
and, with `digest`, when the MD5 of the body bytes equals it (what `genhash` prints; the body is
not de-chunked, as keepalived does not either). SSL_GET sends SNI with `enable_sni` (the
virtualhost, or `sni_name`) over the context `check.tls` builds from the `SSL {}` block (client
certificate; the server certificate is not verified). Headers are bounded by
`MAX_HEADER_BYTES`, the body by `MAX_BODY_BYTES` (also what a regex sees); a bigger or
malformed response fails the check. The caller bounds the time.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from typing import NamedTuple

from vrrpd.check.net import Attempt, close_stream, connect_tcp
from vrrpd.config.lvsmodel import CheckerSpec, HttpParams, RegexSpec, UrlSpec
from vrrpd.config.lvsurl import compile_regex

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
READ_CHUNK = 64 * 1024
_STATUS = re.compile(rb"HTTP/1\.[01] +([0-9]{3})(?: |\r\n)")


class Response(NamedTuple):
    """What a check looks at: the status code, the body's MD5 (hex) and length, and the body
    itself when a regex needs it."""

    status: int
    digest: str
    length: int
    body: bytes | None = None


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


async def _read_response(reader: asyncio.StreamReader, keep_body: bool = False) -> Response | str:
    """The response (the body kept only with `keep_body`), or the reason it is unusable."""
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
    md5, got, kept = hashlib.md5(usedforsecurity=False), 0, bytearray()
    while length is None or got < length:
        chunk = await reader.read(READ_CHUNK if length is None else min(READ_CHUNK, length - got))
        if not chunk:
            break
        got += len(chunk)
        if got > MAX_BODY_BYTES:
            return f"response body larger than {MAX_BODY_BYTES} bytes"
        md5.update(chunk)
        if keep_body:
            kept += chunk
    return Response(int(match.group(1)), md5.hexdigest(), got, bytes(kept) if keep_body else None)


def body_matches(spec: RegexSpec, body: bytes) -> bool | None:
    """Whether the url's `regex` finds a match in `body`; None when `utf` is set and the body
    is not UTF-8 (PCRE2 refuses such a subject too).

    The search starts at `regex_min_offset` (a byte offset; like PCRE2's start offset, `^`
    does not match there unless it is a line start), and the match must begin at or before
    `regex_max_offset` and, with `firstline`, at or before the first newline after the start.
    `re.search` returns the leftmost match, so checking where it begins is checking them all.
    """
    if spec.min_offset > len(body):
        return False
    if "utf" in spec.options:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        start = len(body[: spec.min_offset].decode("utf-8", "ignore"))
    else:
        text, start = body.decode("latin-1"), spec.min_offset  # one character a byte
    found = compile_regex(spec).search(text, start)
    if found is None:
        return False
    newline = text.find("\n", start) if "firstline" in spec.options else -1
    if newline >= 0 and found.start() > newline:
        return False
    begin = len(text[: found.start()].encode()) if "utf" in spec.options else found.start()
    return spec.max_offset is None or begin <= spec.max_offset


def _verdict(url: UrlSpec, got: Response) -> Attempt:
    """Status code, then regex, then digest: the first that fails decides."""
    if not url.status_ok(got.status):
        return Attempt(False, f"HTTP status code error ({got.status}) url({url.path})")
    if url.regex is not None and got.body is not None:
        matched = body_matches(url.regex, got.body)
        if matched is None:
            return Attempt(False, f"body is not UTF-8 (regex_options utf) url({url.path})")
        if matched == url.regex.no_match:
            what = "matched (regex_no_match)" if matched else "did not match"
            return Attempt(False, f"regex {what} url({url.path})")
    if url.digest is not None:
        if got.digest != url.digest:
            return Attempt(False, f"MD5 digest error ({got.digest}) url({url.path})")
        return Attempt(True, f"MD5 digest success to {{rs}} url({url.path})")
    if url.regex is not None:
        return Attempt(True, f"regex success to {{rs}} url({url.path})")
    return Attempt(True, f"HTTP status code success to {{rs}} url({url.path})")


async def fetch(
    spec: CheckerSpec, params: HttpParams, url: UrlSpec, tls: ssl.SSLContext | None = None
) -> Attempt:
    """One URL over a new connection (TLS with `tls`): status code, regex and digest."""
    sni = (params.sni_name or url.virtualhost) if params.enable_sni else None
    reader, writer = await connect_tcp(spec, tls=tls, server_hostname=sni, limit=MAX_HEADER_BYTES)
    try:
        writer.write(request_bytes(spec, params, url))
        await writer.drain()
        got = await _read_response(reader, keep_body=url.regex is not None)
    finally:
        await close_stream(writer)
    if isinstance(got, str):
        return Attempt(False, f"{got} url({url.path})")
    return _verdict(url, got)


async def http_check(
    spec: CheckerSpec, timeout_s: float, tls: ssl.SSLContext | None = None
) -> Attempt:
    """Every url in turn, each bounded by `timeout_s`; the first failure decides.
    No url: the server counts as up (keepalived enables it without checking). `tls` is the
    SSL_GET context (None: plain HTTP)."""
    assert isinstance(spec.params, HttpParams)
    result = Attempt(True, "no url to check for {rs}")
    for url in spec.params.urls:
        async with asyncio.timeout(timeout_s):
            result = await fetch(spec, spec.params, url, tls)
        if not result.ok:
            return result
    return result
