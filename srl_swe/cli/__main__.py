"""``python -m srl_swe.cli``: the ``srl-swe`` command."""

import sys

from srl_swe.cli import main

sys.exit(main())
