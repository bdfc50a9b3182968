"""docs/ holds the generator scripts of the site's reference pages: importable here as in `make docs-reference`."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[3] / "docs"
if str(DOCS) not in sys.path:
    sys.path.insert(0, str(DOCS))
