"""The Weights pipeline parameter: what a training starts from. One rule for the trigger, the CLI,
the API and train.py.

    pretrained                                       the official yolo11{variant}.pt (Ultralytics' downloader)
    scratch                                          the yolo11{variant}.yaml architecture, random weights
    s3://bucket/key.pt | s3://bucket/key.tar.gz      an earlier model (best.pt, or a model.tar.gz holding it)
    arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION   a registered model (its model.tar.gz)

A job without internet access cannot download `pretrained`: `yolopipe weights stage` puts the
official file under `weights/` in the stack's bucket and prints the `s3://` value to use instead.
A pipeline parameter value is at most 1,024 characters (StartPipelineExecution's `String1024`).
"""

from __future__ import annotations

import re

from .errors import ParameterError

PRETRAINED = "pretrained"
SCRATCH = "scratch"
#: Where `yolopipe weights stage` puts official weights in the stack's bucket.
STAGED_PREFIX = "weights/"
#: StartPipelineExecution: a Parameter's Value is a String1024 (botocore's service model).
MAX_LENGTH = 1024

_S3 = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/[^\s]+\.(pt|tar\.gz)")
_PACKAGE = re.compile(r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:\d{12}:model-package/"
                      r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}/\d{1,9}")
FORMS = ("pretrained, scratch, s3://BUCKET/KEY.pt (or a model.tar.gz) or a model package ARN "
         "(arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION)")


def official_name(variant: str) -> str:
    """`n` -> `yolo11n.pt`: the file Ultralytics publishes for a YOLO11 size."""
    return f"yolo11{variant}.pt"


def staged_key(variant: str) -> str:
    """Where `yolopipe weights stage` puts the official weights of `variant` in the bucket."""
    return STAGED_PREFIX + official_name(variant)


def check_weights(raw: object) -> str:
    """Return the Weights value checked (stripped, `pretrained`/`scratch` in lower case), or raise
    ParameterError naming the accepted forms."""
    value = str(raw).strip()
    if value.lower() in (PRETRAINED, SCRATCH):
        return value.lower()
    if len(value) > MAX_LENGTH:
        raise ParameterError(f"Weights is {len(value)} characters long; at most {MAX_LENGTH} (a pipeline parameter)")
    if _S3.fullmatch(value) or _PACKAGE.fullmatch(value):
        return value
    if value.startswith("s3://"):
        raise ParameterError(f"Weights {value!r}: an S3 URI must name a .pt file or a model.tar.gz, "
                             "e.g. s3://my-bucket/weights/yolo11n.pt")
    if ":pipeline/" in value or ":model-package-group/" in value:
        raise ParameterError(f"Weights {value!r}: name the model package (its ARN ends in /VERSION) or its "
                             "model.tar.gz; `yolopipe report EXECUTION` shows both")
    raise ParameterError(f"Weights {value!r} is not valid; use {FORMS}")
