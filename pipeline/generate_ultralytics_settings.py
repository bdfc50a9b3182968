"""Generate `yolopipe_shared/ultralytics_settings.json`: every setting of the pinned Ultralytics with its
default and type, from Ultralytics' own `ultralytics/cfg/default.yaml` and the type lists of
`ultralytics/cfg/__init__.py` (CFG_FLOAT_KEYS, CFG_FRACTION_KEYS, CFG_INT_KEYS, CFG_BOOL_KEYS,
CFG_STR_KEYS, CFG_INT_MIN). The trigger checks settings against it without torch or Ultralytics.

    python -m pipeline.generate_ultralytics_settings          # rewrite the file
    python -m pipeline.generate_ultralytics_settings --check  # exit 1 when it is out of step with the pin

tests/unit/shared/test_ultralytics_settings.py fails when the file and the installed pin differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TARGET = Path(__file__).resolve().parents[1] / "functions" / "shared" / "yolopipe_shared" / "ultralytics_settings.json"


def build() -> dict[str, Any]:
    """The catalogue of the installed Ultralytics: {"ultralytics": version, "settings": {key: {...}}}."""
    import yaml
    from ultralytics import __version__
    from ultralytics import cfg as ucfg
    from ultralytics.utils import DEFAULT_CFG_PATH

    defaults = yaml.safe_load(Path(DEFAULT_CFG_PATH).read_text())
    kinds: tuple[tuple[str, Any], ...] = (
        ("fraction", ucfg.CFG_FRACTION_KEYS), ("float", ucfg.CFG_FLOAT_KEYS), ("int", ucfg.CFG_INT_KEYS),
        ("bool", ucfg.CFG_BOOL_KEYS), ("str", getattr(ucfg, "CFG_STR_KEYS", frozenset())))
    minimum = dict(getattr(ucfg, "CFG_INT_MIN", {}))
    settings: dict[str, Any] = {}
    for key in sorted(defaults):
        kind = next((name for name, keys in kinds if key in keys), "any")
        entry: dict[str, Any] = {"type": kind, "default": defaults[key]}
        if key in minimum:
            entry["min"] = minimum[key]
        settings[key] = entry
    return {"ultralytics": __version__, "source": "ultralytics/cfg/default.yaml + ultralytics/cfg/__init__.py",
            "settings": settings}


def render(catalogue: dict[str, Any]) -> str:
    return json.dumps(catalogue, indent=1, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the installed pin")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        same = TARGET.is_file() and TARGET.read_text() == text
        print(f"{TARGET.name}: {'in step' if same else 'OUT OF STEP'} with the installed Ultralytics")
        return 0 if same else 1
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
