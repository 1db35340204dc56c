"""Logging as keepalived does it: the same message text, to syslog, the console or a file.

keepalived flags: `-l/--log-console`, `-D/--log-detail` (detail lines such as `setting VIPs.`),
`-g/--log-file FILE`, `-G/--no-syslog`, `-S FACILITY`. structlog sits underneath so that
`--log-format json` gives one JSON object per line with the same message in `event`.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from typing import Any

import structlog

SYSLOG_IDENT = "vrrpd"
SYSLOG_SOCKET = "/dev/log"


class _QuietSyslog(logging.handlers.SysLogHandler):
    """A syslog daemon that goes away must not turn every log line into a traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def _message_only(_: Any, __: str, event: dict[str, Any]) -> str:
    return str(event.get("event", ""))


def setup_logging(
    *,
    console: bool,
    detail: bool,
    log_file: str | None = None,
    syslog: bool = True,
    facility: int | None = None,
    json_format: bool = False,
) -> None:
    """Configure the root logger's handlers and structlog (called once, before the loop)."""
    render: Any = structlog.processors.JSONRenderer() if json_format else _message_only
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, render],
        foreign_pre_chain=[structlog.stdlib.add_log_level],
    )
    handlers: list[logging.Handler] = []
    if console:
        handlers.append(_with(logging.StreamHandler(sys.stderr), formatter, "%(asctime)s: "))
    if log_file:
        handlers.append(_with(logging.FileHandler(log_file), formatter, "%(asctime)s: "))
    if syslog and os.path.exists(SYSLOG_SOCKET):
        # No syslog socket (containers, namespaces): keepalived also carries on without it.
        fac = facility if facility is not None else logging.handlers.SysLogHandler.LOG_DAEMON
        handler = _QuietSyslog(address=SYSLOG_SOCKET, facility=fac)
        handler.ident = f"{SYSLOG_IDENT}: "
        handlers.append(_with(handler, formatter, ""))
    # Only vrrpd's own loggers: -D must not turn on pyroute2's and asyncio's debug chatter.
    ours = logging.getLogger("vrrpd")
    ours.handlers[:] = handlers or [logging.NullHandler()]
    ours.setLevel(logging.DEBUG if detail else logging.INFO)
    ours.propagate = False
    structlog.configure(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class _Prefixed(logging.Formatter):
    """Puts keepalived's console timestamp in front of the structlog-rendered message."""

    def __init__(self, inner: logging.Formatter, prefix: str) -> None:
        super().__init__(prefix + "%(message)s", datefmt="%a %b %d %H:%M:%S %Y")
        self.inner = inner
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        body = self.inner.format(record)
        if not self.prefix:
            return body
        return self.formatTime(record, self.datefmt) + ": " + body


def _with(handler: logging.Handler, inner: logging.Formatter, prefix: str) -> logging.Handler:
    handler.setFormatter(_Prefixed(inner, prefix))
    return handler
