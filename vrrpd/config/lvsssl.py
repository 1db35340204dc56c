"""keepalived's top-level `SSL {}` block (man keepalived.conf "SSL"): `password`, `ca`,
`certificate` and `key`, the TLS client settings every SSL_GET uses.

Without the block (or with an empty one) keepalived generates its own context: SSL_GET presents
no client certificate and does not verify the server. With it, SSL_GET presents `certificate`
(its key from `key`, else from the certificate file; `password` decrypts an encrypted key) and
loads `ca` as its trust store. keepalived's documentation says nothing of verifying the server
with that CA, so the server certificate is still not verified (a check passing under
keepalived passes under vrrpd too); see `vrrpd.check.tls`.

The model has no file access, so the files are looked for by `check_ssl_files`, which the loader
calls with its `Source`: a missing file is an error at the keyword's line, reported at load
rather than as every SSL_GET failing later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from vrrpd.config.diag import Problems
from vrrpd.config.lexer import Node
from vrrpd.config.lvsmodel import HttpParams, SslSpec, VirtualServerSpec
from vrrpd.config.values import Ctx, Draft, Handler, dispatch, str_kw
from vrrpd.errors import Location

SSL_KEYWORDS = ("password", "ca", "certificate", "key")
SSL_HANDLERS: dict[str, Handler] = {k: str_kw(k) for k in SSL_KEYWORDS}


def parse_ssl(nodes: Iterable[Node], ctx: Ctx) -> SslSpec | None:
    """Every `SSL {}` block, a later value replacing an earlier one; None when none is set."""
    d: Draft = {}
    where: dict[str, Location] = {}
    first: Location | None = None
    for node in nodes:
        first = first or node.loc
        ctx.nargs(node, 0, 0, "{ ... }")
        dispatch("SSL", ctx.block(node), SSL_HANDLERS, d, ctx)
        where.update((kw, ctx.locs[("SSL", kw)]) for kw in SSL_KEYWORDS if ("SSL", kw) in ctx.locs)
    if first is None or not d:
        return None
    if "key" in d and "certificate" not in d:
        ctx.warn(where["key"], "SSL key without a certificate is not used (ignored)",
                 "add: certificate /path/to/cert.pem")  # fmt: skip
        del d["key"]
    if "password" in d and "certificate" not in d:
        ctx.warn(where["password"], "SSL password without a certificate and key is not used "
                 "(ignored)")  # fmt: skip
        del d["password"]
    return SslSpec(**d, locations=tuple(where.items()), location=first)


def ssl_specs(servers: Iterable[VirtualServerSpec]) -> list[SslSpec]:
    """The distinct `SslSpec`s the SSL_GET checkers of `servers` use."""
    found: dict[SslSpec, None] = {}
    for vs in servers:
        for rs in vs.real_servers:
            for checker in rs.checkers:
                if isinstance(checker.params, HttpParams) and checker.params.ssl is not None:
                    found[checker.params.ssl] = None
    return list(found)


def check_ssl_files(
    servers: Iterable[VirtualServerSpec], exists: Callable[[str], bool], problems: Problems
) -> None:
    """An error at the keyword for each SSL file an SSL_GET would need that does not exist."""
    for spec in ssl_specs(servers):
        for keyword, path, loc in spec.files():
            if not exists(path):
                problems.error(loc, f"SSL {keyword} file {path} does not exist",
                               "SSL_GET checkers cannot set up TLS without it")  # fmt: skip


__all__ = ["check_ssl_files", "parse_ssl", "ssl_specs"]
