"""The real filesystem behind `vrrpd.config.source.Source`."""

from __future__ import annotations

import glob
import os

from vrrpd.config.source import SourceError, decode_text


class FileSource:
    """Reads configuration files from disk for the config front-ends."""

    def read_text(self, path: str) -> str:
        if os.path.isdir(path):
            raise SourceError(f"{path} is a directory")
        try:
            with open(path, "rb") as fh:
                data = fh.read(16 * 1024 * 1024)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
        return decode_text(data, path)

    def glob(self, pattern: str) -> list[str]:
        return sorted(p for p in glob.glob(pattern) if os.path.isfile(p))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)
