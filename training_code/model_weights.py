"""What a training starts from (the Weights parameter), fetched and checked inside the job before
training starts.

    pretrained    Ultralytics' own downloader (attempt_download_asset) fetches yolo11{variant}.pt;
                  offline (YOLO_OFFLINE was set for the job) or unreachable: one line saying how to stage it
    scratch       None: train.py builds the yolo11{variant}.yaml architecture
    s3://...      boto3 (the PyTorch image has it; local mode gives jobs AWS_ENDPOINT_URL) downloads the
                  .pt, or the model.tar.gz whose best.pt is taken
    model package DescribeModelPackage -> its ModelDataUrl (model.tar.gz) -> best.pt
    a local path  a .pt file or a folder holding one (the `weights` channel, tests)

The execution role reads the stack's bucket (s3:GetObject) and describes the model packages of its
own group, nothing more: weights elsewhere fail with AccessDenied, in one line.
Every candidate is loaded and checked: a YOLO11 detection model of the variant asked for.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yolopipe_shared.errors import ParameterError
from yolopipe_shared.weights import PRETRAINED, SCRATCH, check_weights, official_name, staged_key

#: The largest checkpoint or model.tar.gz fetched (yolo11x.pt is ~110 MB).
MAX_DOWNLOAD_BYTES = 2 * 1024**3
#: Set by yolo_offline.prepare_environment to what YOLO_OFFLINE said before it forced it on.
OFFLINE_ENV = "YOLOPIPE_OFFLINE"


class WeightsUnavailable(ParameterError):
    """The weights asked for cannot be fetched or are not what was asked for."""


def resolve_weights(value: str | None, variant: str, work: Path, environ: Mapping[str, str]) -> Path | None:
    """The checkpoint to train from (None: from scratch). `value` is the Weights hyperparameter;
    without one, the `weights` channel if the job has it, else the pipeline's default, `pretrained`."""
    channel = environ.get("SM_CHANNEL_WEIGHTS")
    if not value:
        if channel:
            return check_checkpoint(find_checkpoint(Path(channel)), variant, channel)
        value = PRETRAINED
    if value.lower() == SCRATCH:
        return None
    if value.lower() == PRETRAINED:
        return check_checkpoint(download_official(variant, environ), variant, official_name(variant))
    if value.startswith(("s3://", "arn:")):
        checked = check_weights(value)
        work.mkdir(parents=True, exist_ok=True)
        return check_checkpoint(fetch_from_aws(checked, work), variant, checked)
    return check_checkpoint(find_checkpoint(Path(value)), variant, value)


def _stage_hint(variant: str) -> str:
    return (f"stage it once with `yolopipe weights stage {variant}` and run with "
            f"Weights=s3://<bucket>/{staged_key(variant)} (or Weights=scratch)")


def download_official(variant: str, environ: Mapping[str, str]) -> Path:
    """yolo11{variant}.pt through Ultralytics' downloader, into its weights folder."""
    name = official_name(variant)
    from ultralytics.utils import SETTINGS

    target = Path(SETTINGS["weights_dir"]) / name
    if target.is_file():
        return target
    if environ.get(OFFLINE_ENV, "0") == "1":
        raise WeightsUnavailable(f"Weights=pretrained needs {name}, but this job is offline (YOLO_OFFLINE); "
                                 + _stage_hint(variant))
    from ultralytics.utils.downloads import attempt_download_asset

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        path = Path(attempt_download_asset(target))
    except (ConnectionError, OSError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise WeightsUnavailable(f"Weights=pretrained: {name} could not be downloaded ({reason}); "
                                 + _stage_hint(variant)) from None
    if not path.is_file():
        raise WeightsUnavailable(f"Weights=pretrained: {name} could not be downloaded; " + _stage_hint(variant))
    return path


def find_checkpoint(path: Path) -> Path:
    """A .pt file, or the best.pt (else the first .pt) in a folder."""
    if path.is_file() and path.suffix == ".pt":
        return path
    candidates = sorted(path.rglob("*.pt")) if path.is_dir() else []
    if not candidates:
        raise WeightsUnavailable(f"no .pt file at {path}; give a .pt file, a folder holding one, or Weights=scratch")
    preferred = [p for p in candidates if p.name == "best.pt"]
    return (preferred or candidates)[0]


def fetch_from_aws(value: str, work: Path, *, s3: Any = None, sagemaker: Any = None) -> Path:
    """Download an s3:// .pt or model.tar.gz (a model package: its ModelDataUrl) and return the .pt."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if value.startswith("arn:"):
            sagemaker = sagemaker or _client("sagemaker")
            package = sagemaker.describe_model_package(ModelPackageName=value)
            containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
            uri = str(containers[0].get("ModelDataUrl") or "")
            if not uri.startswith("s3://"):
                raise WeightsUnavailable(f"model package {value} has no model.tar.gz in S3; use another Weights")
        else:
            uri = value
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3 = s3 or _client("s3")
        size = int(s3.head_object(Bucket=bucket, Key=key).get("ContentLength") or 0)
        if size > MAX_DOWNLOAD_BYTES:
            raise WeightsUnavailable(f"{uri} is {size / 1024**3:.1f} GiB; weights of at most "
                                     f"{MAX_DOWNLOAD_BYTES // 1024**3} GiB are fetched")
        local = work / Path(key).name
        s3.download_file(bucket, key, str(local))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise WeightsUnavailable(f"Weights {value}: {code} ({exc.response.get('Error', {}).get('Message', '')}); "
                                 "the training role reads the stack's bucket and its model package group only"
                                 ) from None
    except BotoCoreError as exc:
        raise WeightsUnavailable(f"Weights {value}: {exc}") from None
    return local if local.suffix == ".pt" else best_from_archive(local, work)


def _client(service: str) -> Any:
    """boto3's client from the job's environment (credentials, region; AWS_ENDPOINT_URL locally)."""
    import boto3

    session: Any = boto3.session.Session(region_name=os.environ.get("AWS_REGION")
                                         or os.environ.get("AWS_DEFAULT_REGION"))
    return session.client(service)


def best_from_archive(archive: Path, work: Path) -> Path:
    """best.pt (else last.pt) from a model.tar.gz, read as a regular file member: no paths are followed."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).as_posix().removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
            member = members.get("best.pt") or members.get("last.pt")
            if member is None:
                raise WeightsUnavailable(f"{archive.name} holds no best.pt or last.pt at its root")
            if member.size > MAX_DOWNLOAD_BYTES:
                raise WeightsUnavailable(f"{archive.name}: {member.name} is larger than "
                                         f"{MAX_DOWNLOAD_BYTES // 1024**3} GiB")
            source = tar.extractfile(member)
            assert source is not None
            target = work / "weights-from-archive.pt"
            with source, target.open("wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise WeightsUnavailable(f"{archive.name} is not a readable model.tar.gz ({type(exc).__name__})") from None
    return target


def check_checkpoint(path: Path, variant: str, source: str) -> Path:
    """Load it with Ultralytics: a YOLO11 detection model of `variant`, or one line saying what it is."""
    from ultralytics import YOLO

    try:
        model = YOLO(str(path))
    except Exception as exc:  # noqa: BLE001 - any load failure means "not a checkpoint we can train from"
        raise WeightsUnavailable(f"weights {source} cannot be loaded by Ultralytics "
                                 f"({type(exc).__name__}); give a YOLO11 .pt or Weights=scratch") from None
    if model.task != "detect":
        raise WeightsUnavailable(f"weights {source} are a {model.task} model; yolopipe trains detection models")
    yaml = getattr(model.model, "yaml", None) or {}
    stem = Path(str(yaml.get("yaml_file", ""))).stem
    scale = yaml.get("scale") or (stem[len("yolo11"):] if stem.startswith("yolo11") else "")
    if not stem.startswith("yolo11"):
        raise WeightsUnavailable(f"weights {source} are {stem or 'not'} a YOLO11 model; give YOLO11 weights "
                                 "or Weights=scratch")
    if scale != variant:
        raise WeightsUnavailable(f"weights {source} are YOLO11{scale} but ModelVariant is {variant}; "
                                 f"set ModelVariant={scale} or other weights")
    return path
