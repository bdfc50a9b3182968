"""`python -m yolopipe.local [DATASET]`: see yolopipe.local.runner.main."""

from .runner import main

raise SystemExit(main())
