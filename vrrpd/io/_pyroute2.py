"""Import pyroute2's modules without its package `__init__`.

`pyroute2/__init__.py` imports every API it has (IPDB, NDB with sqlite3, multiprocessing,
unittest, ...): about 7 MB of RSS and 0.1 s of start-up that a VRRP daemon never uses. The
daemon needs a handful of submodules (`pyroute2.iproute.linux`, `pyroute2.netlink.*`,
`pyroute2.ipvs`), so when nothing has imported pyroute2 yet we register a bare package module
with the real search path: submodules then import normally, the package body never runs.
Code in `vrrpd` must therefore import from submodules (`from pyroute2.iproute.linux import
AsyncIPRoute`), never from the package (`from pyroute2 import AsyncIPRoute`).
"""

from __future__ import annotations

import importlib.util
import sys
import types


def install() -> None:
    if "pyroute2" in sys.modules:
        return  # already imported whole (a test, say): submodule imports work the same
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed: the real import fails later with a clear ImportError
    package = types.ModuleType("pyroute2")
    package.__spec__ = spec
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    package.__package__ = "pyroute2"
    sys.modules["pyroute2"] = package
