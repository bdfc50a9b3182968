"""Write template.yaml as CloudFormation will see it after the SAM transform, for checkov.

`make security` scans this rather than template.yaml: the transform turns each function's `Policies`,
`Events` and `EventInvokeConfig` into the IAM roles, rules and permissions CloudFormation creates, and
checkov's IAM checks only see them there. It is the translation `sam validate` runs (SAM CLI's own
validator: local code paths replaced by placeholder S3 URIs), offline and without credentials. Each
resource keeps its `Metadata`, so the checkov suppressions written in template.yaml still apply.

Run with the SAM CLI's interpreter: .venv-sam/bin/python .ci/sam_transform.py template.yaml OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

from samcli.lib.translate.sam_template_validator import SamTemplateValidator
from samcli.yamlhelper import yaml_parse


class NoManagedPolicyLookup:
    """The template names no AWS managed policy by name, so the transform never needs IAM's list."""

    def load(self) -> dict[str, str]:
        return {}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = Path(argv[1]), Path(argv[2])
    # The region only fills in pseudo parameters; the resources checkov reads are the same in every one.
    validator = SamTemplateValidator(yaml_parse(source.read_text()), NoManagedPolicyLookup(), region="us-east-1")
    translated = validator.get_translated_template_if_valid()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(translated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
