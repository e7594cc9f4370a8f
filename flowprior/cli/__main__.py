"""``python -m flowprior.cli``: the same as the ``flowprior`` command."""

import sys

from flowprior.cli.commands import main

sys.exit(main())
