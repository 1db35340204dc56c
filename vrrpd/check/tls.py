"""SSL_GET's TLS client contexts (keepalived `check_ssl.c`, man keepalived.conf "SSL").

Without an `SSL {}` block keepalived generates a context: no client certificate, no check of
the server's certificate. With the block the context presents `certificate` (the key from `key`,
else from the certificate file; `password` decrypts an encrypted key) and loads `ca` as its trust
store. The server's certificate is not verified in either case: keepalived's documentation
describes `ca` only as the "CA file", not as a check of the server, and a health check that
connects by address would fail any host name check anyway. So a server keepalived passes,
vrrpd passes too; the CA still completes the chain the client presents.

A context is built once per `TlsContexts` (one per `CheckerSet`, so a reload reads the files
again) and reused by every attempt; a file that cannot be loaded is logged once and fails each
SSL_GET attempt with the reason, never blocking the other checkers.
"""

from __future__ import annotations

import ssl

import structlog

from vrrpd.config.lvsmodel import SslSpec

log = structlog.get_logger("vrrpd.check")


class TlsSetupError(Exception):
    """The `SSL {}` files could not be loaded (missing, unreadable, wrong password)."""


def client_context(spec: SslSpec | None) -> ssl.SSLContext:
    """The client context for `spec` (None: keepalived's generated one); raises
    `TlsSetupError`."""
    # not create_default_context: the system's CAs have no part in it (nothing is verified,
    # and with `ca` the store holds that file only, as keepalived's)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if spec is None:
        return ctx
    password = (spec.password or "").encode()
    try:
        if spec.certificate:
            # a callable, never None: without it OpenSSL would prompt on the terminal for the
            # pass phrase of an encrypted key and stall the daemon
            ctx.load_cert_chain(spec.certificate, spec.key, password=lambda: password)
        if spec.ca:
            ctx.load_verify_locations(cafile=spec.ca)
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise TlsSetupError(f"SSL context: {reason}") from exc
    return ctx


class TlsContexts:
    """The contexts of one checker set, by `SslSpec` (errors remembered too)."""

    def __init__(self) -> None:
        self._made: dict[SslSpec | None, ssl.SSLContext | TlsSetupError] = {}

    def get(self, spec: SslSpec | None) -> ssl.SSLContext:
        """The context for `spec`; raises `TlsSetupError` (logged the first time)."""
        if spec not in self._made:
            try:
                self._made[spec] = client_context(spec)
            except TlsSetupError as exc:
                log.error(f"SSL_GET: cannot set up TLS from the SSL block: {exc}")
                self._made[spec] = exc
        got = self._made[spec]
        if isinstance(got, TlsSetupError):
            raise TlsSetupError(str(got))  # a fresh one: no traceback piling up per attempt
        return got
