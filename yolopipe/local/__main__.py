"""`python -m yolopipe.local [run|serve] ...`: see yolopipe.local.command.main."""

from .command import main

raise SystemExit(main())
