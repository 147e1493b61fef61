"""`python -m autoconf` is the `mail-autoconf` command."""

import sys

from autoconf.cli import main

sys.exit(main())
