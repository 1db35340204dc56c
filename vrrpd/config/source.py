"""Where configuration text comes from: an injected file-access interface.

The config layer may not touch the filesystem itself (import-linter forbids `os` and `glob`), so
the front-ends read files through a `Source`. The real implementation is
`vrrpd.io.files.FileSource`; `MemorySource` serves tests and the YAML converter.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Mapping
from typing import Protocol


class SourceError(Exception):
    """A file that exists in name only: unreadable, a directory, or not text."""


class Source(Protocol):
    """Read-only access to configuration files (keepalived `include` needs `glob`)."""

    def read_text(self, path: str) -> str:
        """The file's text; raises `FileNotFoundError` or `SourceError`."""
        ...

    def glob(self, pattern: str) -> list[str]:
        """Existing paths matching a shell glob (no brace expansion), sorted."""
        ...

    def exists(self, path: str) -> bool: ...


class MemorySource:
    """An in-memory `Source`: a mapping of absolute POSIX path to file text."""

    def __init__(self, files: Mapping[str, str | bytes]) -> None:
        self._files = {posixpath.normpath(k): v for k, v in files.items()}

    def read_text(self, path: str) -> str:
        data = self._files.get(posixpath.normpath(path))
        if data is None:
            raise FileNotFoundError(path)
        return decode_text(data, path)

    def glob(self, pattern: str) -> list[str]:
        pattern = posixpath.normpath(pattern)
        return sorted(p for p in self._files if fnmatch.fnmatchcase(p, pattern))

    def exists(self, path: str) -> bool:
        return posixpath.normpath(path) in self._files


def decode_text(data: str | bytes, path: str) -> str:
    """Decode a config file as UTF-8; a NUL byte or bad UTF-8 means "not a text file"."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path} is not a UTF-8 text file (byte {exc.start})") from None
    if "\x00" in data:
        raise SourceError(f"{path} is not a text file (it contains NUL bytes)")
    return data
