"""`python -m pipeline.local [DATASET]`: see pipeline.local.runner.main."""

from .runner import main

raise SystemExit(main())
