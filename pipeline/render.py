"""Render the pipeline definition JSON: offline, deterministic, checked.

    python -m pipeline.render --output build/pipeline.json                 # a template (placeholders)
    python -m pipeline.render --output p.json --bucket b --role arn:... --region eu-west-1

Offline: no credentials and no network are needed (the training code is referenced by URI, never
uploaded here). Deterministic: the same inputs give byte-identical JSON (sorted keys, fixed
indentation). Checked: every `{"Get": ...}` resolves to a parameter, an execution variable or a
property of an earlier step, and the JsonGet paths are the evaluation.json constants.

Without an option the value stays a `${Name}` placeholder (yolopipe_shared.pipeline_template
.PLACEHOLDERS) that the deploy function fills with `substitute`.

The image account is such a placeholder too: the Deep Learning Containers live in 763104351884 in
most regions but in an account of their own in the opt-in ones (af-south-1, ap-east-1, il-central-1,
me-central-1...). `--image-accounts FILE` writes the region -> account table of the images the
definition uses, from the SageMaker SDK's offline image_uri_config, for the deploy function.

    python -m pipeline.render --output build/pipeline.json --image-accounts build/image_accounts.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from yolopipe_shared.errors import DefinitionError, YolopipeError
from yolopipe_shared.pipeline_template import (
    PLACEHOLDERS,
    check_definition,
    find_placeholders,
    load_definition,
    substitute,
)

__all__ = ["PLACEHOLDERS", "image_account_table", "main", "render_definition", "substitute"]


@contextlib.contextmanager
def _quiet_sdk() -> Iterator[None]:
    """The SDK logs and warns on every build (job names popped, no wait in a PipelineSession...)."""
    loggers = [logging.getLogger(name) for name in ("sagemaker", "sagemaker.config", "botocore")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def canonical_json(document: Mapping[str, Any]) -> str:
    """The one serialisation: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


@functools.lru_cache(maxsize=8)
def render_definition(
    *,
    bucket: str | None = None,
    role_arn: str | None = None,
    region: str | None = None,
    code_s3_uri: str | None = None,
    pipeline_name: str = "yolopipe",
) -> str:
    """The checked, canonical definition JSON; values left as None stay placeholders.

    Memoised per process: the output depends only on the arguments (that is the point).
    """
    # The SDK needs a region at import and checks roles through IAM unless told not to.
    os.environ.setdefault("AWS_DEFAULT_REGION", region or "us-east-1")
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    from pipeline.definition import PipelineConfig, build_pipeline

    config = PipelineConfig(pipeline_name=pipeline_name)
    given: dict[str, Any] = {"bucket": bucket, "role_arn": role_arn, "region": region, "code_s3_uri": code_s3_uri}
    config = dataclasses.replace(config, **{key: value for key, value in given.items() if value})
    with _quiet_sdk():
        text = build_pipeline(config).definition()
    # Top-level nulls (no experiment config, no MLflow) say nothing SageMaker needs.
    document = {key: value for key, value in load_definition(text).items() if value is not None}
    problems = check_definition(document)
    if problems:
        raise DefinitionError(f"the rendered definition is inconsistent: {'; '.join(problems)}")
    return canonical_json(document)


_PYTORCH_IMAGE_CONFIG = "sagemaker/core/image_uri_config/pytorch.json"


def image_account_table() -> dict[str, Any]:
    """Region -> DLC registry account for every region that has both images the definition uses.

    From the SageMaker SDK's `sagemaker.core.image_uri_config/pytorch.json` (offline, versioned with
    the SDK). The two images must agree on a region's account: the definition has one placeholder.
    """
    from pipeline.definition import PYTHON_VERSION, PYTORCH_INFERENCE_VERSION, PYTORCH_VERSION

    # Read from the installed distribution without importing the SDK (seconds, and a region at import).
    config_file = Path(str(metadata.distribution("sagemaker-core").locate_file(_PYTORCH_IMAGE_CONFIG)))
    try:
        table = json.loads(config_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DefinitionError(f"the SageMaker SDK's image table is missing ({config_file}): run make install") from exc
    images = {"training": PYTORCH_VERSION, "inference": PYTORCH_INFERENCE_VERSION}
    per_image: list[dict[str, str]] = []
    for scope, version in images.items():
        try:
            per_image.append({str(k): str(v) for k, v in table[scope]["versions"][version]["registries"].items()})
        except KeyError as exc:
            raise DefinitionError(f"the SageMaker SDK lists no pytorch-{scope} {version} image") from exc
    regions = set(per_image[0]).intersection(*per_image[1:])
    conflicts = sorted(region for region in regions if len({registries[region] for registries in per_image}) > 1)
    if conflicts:
        raise DefinitionError(
            f"the training and inference images live in different accounts in {', '.join(conflicts)}; "
            "the definition has one ${ImageAccountId} placeholder"
        )
    return {
        "source": f"sagemaker-core {metadata.version('sagemaker-core')}: {_PYTORCH_IMAGE_CONFIG}",
        "images": [f"pytorch-{scope}:{version}-gpu-{PYTHON_VERSION}" for scope, version in images.items()],
        "accounts": {region: per_image[0][region] for region in sorted(regions)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipeline.render --output FILE [--bucket --role --region --pipeline-name --code-s3-uri]`."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.render",
        description="Write the yolopipe SageMaker pipeline definition JSON (offline, deterministic).",
    )
    parser.add_argument("--output", "-o", required=True, help="file to write ('-' for stdout)")
    parser.add_argument("--bucket", help="S3 bucket (default: the ${Bucket} placeholder)")
    parser.add_argument("--role", help="execution role ARN (default: the ${RoleArn} placeholder)")
    parser.add_argument("--region", help="AWS region (default: the ${Region} placeholder)")
    parser.add_argument("--code-s3-uri", help="training-code tarball URI (default: the ${CodeS3Uri} placeholder)")
    parser.add_argument("--pipeline-name", default="yolopipe", help="pipeline name (default: yolopipe)")
    parser.add_argument("--image-accounts", metavar="FILE",
                        help="also write the region -> image account table the deploy function reads")
    args = parser.parse_args(argv)
    if args.role and not args.role.startswith("arn:"):
        print(f"error: --role must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got {args.role!r}",
              file=sys.stderr)
        return 2
    try:
        text = render_definition(
            bucket=args.bucket,
            role_arn=args.role,
            region=args.region,
            code_s3_uri=args.code_s3_uri,
            pipeline_name=args.pipeline_name,
        )
        accounts = canonical_json(image_account_table()) if args.image_accounts else None
    except YolopipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.write(text)
    else:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        left = sorted(find_placeholders(text))
        note = f" (placeholders: {', '.join(left)})" if left else ""
        print(f"wrote {output} ({len(text.encode())} bytes){note}", file=sys.stderr)
    if accounts is not None:
        table_file = Path(args.image_accounts)
        table_file.parent.mkdir(parents=True, exist_ok=True)
        table_file.write_text(accounts, encoding="utf-8")
        print(f"wrote {table_file} (image accounts of {len(json.loads(accounts)['accounts'])} regions)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
