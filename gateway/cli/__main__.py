"""``python -m edgeledger.gateway.cli``: the same as the ``edgeledger`` console script."""
import sys

from edgeledger.gateway.cli import main

sys.exit(main())
