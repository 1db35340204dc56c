"""Measured numbers go to `netns-lab/results/<name>.jsonl`, one JSON object per run."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def write_result(name: str, numbers: dict[str, Any], argv: list[str] | None = None,
                 directory: Path = RESULTS_DIR) -> Path:  # fmt: skip
    """Append one line: the numbers, the exact command line, when, and on which kernel."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.jsonl"
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": shlex.join(argv if argv is not None else [sys.executable, *sys.argv]),
        "cwd": os.getcwd(),
        "kernel": platform.release(),
        **numbers,
    }
    with path.open("a") as f:
        f.write(json.dumps(record, sort_keys=True, default=str) + "\n")
    return path
