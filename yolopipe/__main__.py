"""`python -m yolopipe ...` is `yolopipe ...`."""

import sys

from yolopipe.cli import main

sys.exit(main())
