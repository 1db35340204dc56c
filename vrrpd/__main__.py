"""`python -m vrrpd` is the `vrrpd` command."""

import sys

from vrrpd.cli import main

sys.exit(main())
