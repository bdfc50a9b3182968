"""`python -m pipeline ...` is `yolopipe ...`."""

import sys

from pipeline.cli import main

sys.exit(main())
