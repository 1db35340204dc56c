"""Keep the daemon's memory down: imported first by the `vrrpd` entry point.

structlog imports `rich` (and with it pygments, about 4 MB of RSS) whenever it is installed,
to pretty-print tracebacks on a console; test environments have it (import-linter needs it).
The daemon never renders with rich, so its import is made to fail and structlog falls back to
plain text. Only the entry point does this: importing `vrrpd` as a library changes nothing.
"""

import sys

sys.modules.setdefault("rich", None)  # type: ignore[arg-type]
