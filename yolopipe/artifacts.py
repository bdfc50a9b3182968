"""The model and its evidence in the user's hands: an execution's files on disk, and its model run on images.

    download(sm, s3, execution_arn, to) -> the files written under `to`:
        model.tar.gz    as the training job wrote it (what the model package serves), and unpacked:
        model/          best.pt, last.pt, args.yaml, results.csv, metrics.json, code/ (the serving code)
        training/       output.tar.gz (SM_OUTPUT_DATA_DIR): results.png, PR/P/R/F1 curves, confusion
                        matrices, labels.jpg, train and val batches
        evaluation.json and evaluation/   the Evaluate step's output: its report and its plots (test split)
    predict(weights, images, out, conf) -> per image its detections and an annotated copy (Ultralytics'
        own predict and plotting).

The same layout as the local mode's runs/<execution>/. Archives and objects are untrusted input: members
must be plain files or folders under the target (no links, devices, absolute paths or `..`), and their
count and sizes are bounded before anything is written.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from yolopipe_shared import evaluation
from yolopipe_shared import execution_report as read
from yolopipe_shared.errors import ParameterError, YolopipeError
from yolopipe_shared.layout import split_s3_uri

from .aws import NotFound, aws_errors

MODEL_FOLDER = "model"
TRAINING_FOLDER = "training"
EVALUATION_FOLDER = "evaluation"
MODEL_ARCHIVE = "model.tar.gz"
#: Where SageMaker puts SM_OUTPUT_DATA_DIR: beside model.tar.gz, under the job's output/.
OUTPUT_ARCHIVE = "output.tar.gz"
MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 4 * 1024**3
MAX_ARCHIVE_BYTES = 16 * 1024**3
MAX_EVALUATION_OBJECTS = 1_000
MAX_EVALUATION_BYTES = 1024**3
#: Larger images are refused before they are decoded (as the serving code does).
MAX_IMAGE_PIXELS = 40_000_000


class ArchiveRefused(YolopipeError):
    """An archive or object that would write outside the target, hold links, or exceed the size bounds."""


class NoModel(YolopipeError):
    """The execution has no trained model (yet): its Train step did not finish."""


@dataclass(frozen=True)
class Sources:
    """Where one execution's artifacts are: the model and output archives and the evaluation output prefix."""

    execution_id: str
    model: str = ""
    output: str = ""
    evaluation: str = ""


def find_sources(sm: Any, execution_arn: str) -> Sources:
    """The S3 URIs of an execution's artifacts, from its steps' jobs (empty where a step did not run)."""
    model = output = evaluation_prefix = ""
    with aws_errors(what=f"execution {read.execution_id(execution_arn)!r}"):
        for step in read.list_steps(sm, execution_arn):
            if "TrainingJob" in step.metadata and not model:
                name = str(step.metadata["TrainingJob"].get("Arn", "")).rsplit("/", 1)[-1]
                job = sm.describe_training_job(TrainingJobName=name) if name else {}
                model = str((job.get("ModelArtifacts") or {}).get("S3ModelArtifacts") or "")
                if model.endswith("/" + MODEL_ARCHIVE):
                    output = model.removesuffix(MODEL_ARCHIVE) + OUTPUT_ARCHIVE
            if "ProcessingJob" in step.metadata and not evaluation_prefix:
                name = str(step.metadata["ProcessingJob"].get("Arn", "")).rsplit("/", 1)[-1]
                job = sm.describe_processing_job(ProcessingJobName=name) if name else {}
                for item in (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
                    if item.get("OutputName") == evaluation.EVALUATION_OUTPUT_NAME:
                        evaluation_prefix = str((item.get("S3Output") or {}).get("S3Uri") or "")
    return Sources(read.execution_id(execution_arn), model, output, evaluation_prefix)


def extract(archive: Path, target: Path) -> list[Path]:
    """Unpack a tar(.gz) into `target` after checking every member: plain files and folders only, inside
    `target`, at most MAX_MEMBERS members, MAX_MEMBER_BYTES each and MAX_ARCHIVE_BYTES in all."""
    total = 0
    with tarfile.open(archive, "r:*") as tar:
        members: list[tarfile.TarInfo] = []
        for member in tar:
            name = PurePosixPath(member.name)
            if len(members) >= MAX_MEMBERS:
                raise ArchiveRefused(f"{archive.name} has more than {MAX_MEMBERS} members; not extracted")
            if not (member.isfile() or member.isdir()):
                raise ArchiveRefused(f"{archive.name}: {member.name} is a link or a special file; not extracted")
            if name.is_absolute() or ".." in name.parts:
                raise ArchiveRefused(f"{archive.name}: {member.name} would land outside {target}; not extracted")
            total += member.size
            if member.size > MAX_MEMBER_BYTES or total > MAX_ARCHIVE_BYTES:
                raise ArchiveRefused(f"{archive.name} unpacks to more than the {MAX_ARCHIVE_BYTES >> 30} GiB "
                                     f"(or {MAX_MEMBER_BYTES >> 30} GiB per file) yolopipe extracts")
            members.append(member)
        target.mkdir(parents=True, exist_ok=True)
        tar.extractall(target, members=members, filter="data")  # the standard library's own check, too
    return [target / member.name for member in members if member.isfile()]


def _fetch_archive(s3: Any, uri: str, target: Path, *, missing_ok: bool, keep: Path | None = None) -> list[Path]:
    """Download and extract one archive (bounded); with `keep`, the archive itself stays there too."""
    bucket, key = split_s3_uri(uri)
    with aws_errors(what=uri):
        try:
            size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except s3.exceptions.ClientError as exc:
            if missing_ok and (exc.response.get("Error") or {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return []
            raise
        if size > MAX_ARCHIVE_BYTES:
            raise ArchiveRefused(f"{uri} is {size >> 20} MiB, more than yolopipe downloads")
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target, prefix=".download-") as scratch:
            archive = Path(scratch) / key.rsplit("/", 1)[-1]
            s3.download_file(bucket, key, str(archive))
            written = extract(archive, target)
            if keep is not None:
                archive.replace(keep)
                written.append(keep)
            return written


def _objects(s3: Any, prefix_uri: str) -> Iterator[tuple[str, str, int]]:
    bucket, prefix = split_s3_uri(prefix_uri)
    prefix = prefix.rstrip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents") or []:
            yield bucket, str(item["Key"]), int(item.get("Size") or 0)


def fetch_evaluation(s3: Any, prefix_uri: str, folder: Path) -> list[Path]:
    """The Evaluate step's output: evaluation.json into `folder`, everything else (its plots) under
    `folder/evaluation/`, bounded in count and bytes."""
    written: list[Path] = []
    total = 0
    _, prefix = split_s3_uri(prefix_uri)
    prefix = prefix.rstrip("/") + "/"
    with aws_errors(what=prefix_uri):
        for count, (bucket, key, size) in enumerate(_objects(s3, prefix_uri), 1):
            relative = PurePosixPath(key[len(prefix):])
            total += size
            if count > MAX_EVALUATION_OBJECTS or total > MAX_EVALUATION_BYTES:
                raise ArchiveRefused(f"{prefix_uri} holds more than {MAX_EVALUATION_OBJECTS} objects or "
                                     f"{MAX_EVALUATION_BYTES >> 20} MiB; not downloaded")
            if not relative.parts or ".." in relative.parts or relative.is_absolute():
                raise ArchiveRefused(f"{key} would land outside {folder}; not downloaded")
            if str(relative) == evaluation.EVALUATION_FILE:
                destination = folder / evaluation.EVALUATION_FILE
            else:
                destination = folder / EVALUATION_FOLDER / Path(*relative.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(destination))
            written.append(destination)
    return written


def download(sm: Any, s3: Any, execution_arn: str, to: Path) -> list[Path]:
    """Every artifact of an execution under `to` (see the module docstring): the files written, sorted."""
    sources = find_sources(sm, execution_arn)
    if not sources.model:
        raise NoModel(f"execution {sources.execution_id} has no trained model (its Train step did not finish): "
                      f"`yolopipe report {sources.execution_id}` says why")
    written = fetch_training(s3, sources.model, to)
    written += fetch_evaluation(s3, sources.evaluation, to) if sources.evaluation else []
    return sorted(written)


def fetch_training(s3: Any, model_uri: str, folder: Path) -> list[Path]:
    """The training job's model.tar.gz into `folder/model/` (and as is: what a deployment takes) and, where
    SageMaker wrote one beside it, its output.tar.gz (the training plots) into `folder/training/`."""
    written = _fetch_archive(s3, model_uri, folder / MODEL_FOLDER, missing_ok=False, keep=folder / MODEL_ARCHIVE)
    if model_uri.endswith("/" + MODEL_ARCHIVE):
        output = model_uri.removesuffix(MODEL_ARCHIVE) + OUTPUT_ARCHIVE
        written += _fetch_archive(s3, output, folder / TRAINING_FOLDER, missing_ok=True)
    return written


def fetch_model(s3: Any, model_uri: str, folder: Path) -> Path:
    """model.tar.gz unpacked into `folder` (kept: a second predict reuses it); its best.pt (else last.pt)."""
    for name in ("best.pt", "last.pt"):
        if (folder / name).is_file():
            return folder / name
    _fetch_archive(s3, model_uri, folder, missing_ok=False)
    for name in ("best.pt", "last.pt"):
        if (folder / name).is_file():
            return folder / name
    raise NotFound(f"{model_uri} holds no best.pt or last.pt: it is not a yolopipe model")


def listed(s3: Any, model_uri: str, evaluation_prefix: str, train_step: str = "Train") -> dict[str, str]:
    """What `download` fetches besides model.tar.gz and evaluation.json, by name -> S3 URI (for `report`):
    the training plots' output.tar.gz (`<train step>.plots`) and each file of the evaluation output."""
    found: dict[str, str] = {}
    if model_uri.endswith("/" + MODEL_ARCHIVE):
        output = model_uri.removesuffix(MODEL_ARCHIVE) + OUTPUT_ARCHIVE
        bucket, key = split_s3_uri(output)
        try:
            s3.head_object(Bucket=bucket, Key=key)
            found[f"{train_step}.plots"] = output
        except s3.exceptions.ClientError:
            pass
    if evaluation_prefix:
        for count, (bucket, key, _) in enumerate(_objects(s3, evaluation_prefix)):
            if count >= MAX_EVALUATION_OBJECTS:
                break
            name = key.rsplit("/", 1)[-1]
            if name != evaluation.EVALUATION_FILE:
                found[f"{EVALUATION_FOLDER}/{name}"] = f"s3://{bucket}/{key}"
    return found


# --- predict ------------------------------------------------------------------------------------


def _check_image(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ParameterError(f"{path} is not a file; give image files (JPEG, PNG, ...)")
    # Once imported, Ultralytics wraps Image.open to pip-install a HEIF plugin for any file Pillow cannot
    # identify; a file that is no image must be refused here, not installed for. Its wrapper keeps the original.
    open_image = getattr(sys.modules.get("ultralytics.utils.patches"), "_image_open", Image.open)
    try:
        with open_image(path) as image:  # the header only: nothing decoded yet
            width, height = image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ParameterError(f"{path} is not an image Ultralytics can read ({type(exc).__name__})") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise ParameterError(f"{path} is {width}x{height} pixels; give images of at most {MAX_IMAGE_PIXELS} pixels")
    return width, height


def detections(result: Any) -> list[dict[str, Any]]:
    """One Ultralytics result as detections, in the shape the model package's endpoint answers
    (training_code/serving/inference.py): class_id, name, confidence, box_xyxy in pixels."""
    boxes = result.boxes
    if boxes is None:
        return []
    found = []
    for xyxy, conf, cls in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist(), strict=True):
        class_id = int(cls)
        found.append({"class_id": class_id, "name": str(result.names.get(class_id, class_id)),
                      "confidence": round(float(conf), 5), "box_xyxy": [round(float(v), 2) for v in xyxy]})
    return found


def predict(weights: Path, images: Sequence[str | Path], out: Path, *, conf: float = 0.25) -> list[dict[str, Any]]:
    """Run the model on each image at its training image size; write an annotated copy into `out`.

    Returns per image {"image", "annotated", "width", "height", "detections": [...]}.
    """
    if not 0.0 <= conf <= 1.0:
        raise ParameterError(f"conf must be between 0 and 1, got {conf}")
    if not images:
        raise ParameterError("give at least one image")
    paths = [Path(image) for image in images]
    sizes = [_check_image(path) for path in paths]  # every image checked before the model loads
    # Ultralytics' INFO lines go to stdout, where they would mix with the command's own output (and --json).
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        from ultralytics import YOLO
    except ImportError:  # the CLI alone does not need torch: predicting does
        raise YolopipeError("predict runs the model with Ultralytics, which is not installed here: "
                            "pip install 'yolopipe[train]'") from None

    model = YOLO(str(weights), task="detect")
    imgsz = ((getattr(model, "ckpt", None) or {}).get("train_args") or {}).get("imgsz") or 640
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    for path, (width, height) in zip(paths, sizes, strict=True):
        results: Any = model.predict(str(path), conf=conf, imgsz=imgsz, verbose=False)
        result = results[0]
        name = path.stem + ".jpg" if path.suffix.lower() not in (".jpg", ".jpeg", ".png") else path.name
        stem, suffix, index = Path(name).stem, Path(name).suffix, 1
        while name in used:  # two images of one name from different folders
            index += 1
            name = f"{stem}-{index}{suffix}"
        used.add(name)
        annotated = out / name
        result.save(filename=str(annotated))
        rows.append({"image": str(path), "annotated": str(annotated), "width": width, "height": height,
                     "detections": detections(result)})
    return rows

