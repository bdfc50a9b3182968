"""The model package's serving code: SageMaker's PyTorch inference container runs it as `code/inference.py`.

train.py copies this folder into SM_MODEL_DIR/code, so it ships inside model.tar.gz. The container's
toolkit (pip `sagemaker-pytorch-inference` + `sagemaker-inference`) pip-installs code/requirements.txt,
puts code/ on the path and calls, in this order: model_fn(model_dir) once, then for each request
input_fn(body, content_type) -> predict_fn(images, model) -> output_fn(predictions, accept).

Requests  image/jpeg or image/png: one image as the body. application/json: a JSON list of images,
          each an `s3://bucket/key` URI (read with the endpoint's role) or base64 (a `data:` URI too).
Response  application/json: `{"predictions": [{"width", "height", "detections": [{"class_id", "name",
          "confidence", "box_xyxy"}]}]}`, one entry per image in request order, boxes in pixels.
Bounds    at most MAX_IMAGES images, MAX_IMAGE_BYTES each, MAX_REQUEST_BYTES in all, MAX_PIXELS pixels
          each (checked from the header, before decoding: no decompression bombs). A refused request
          gets HTTP 400 with one line saying what to change.
Settings  YOLOPIPE_CONFIDENCE (default 0.25): the lowest confidence returned; the image size is the
          training's (best.pt's train_args).

Standalone on purpose (Ultralytics, Pillow and boto3 only, all in the image or in requirements.txt).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from pathlib import Path
from typing import Any

#: What input_fn accepts and output_fn answers: the model package's SupportedContentTypes and
#: SupportedResponseMIMETypes (pipeline/definition.py reads these).
CONTENT_TYPES = ("image/jpeg", "image/png", "application/json")
RESPONSE_TYPES = ("application/json",)
MAX_IMAGES = 16
MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_REQUEST_BYTES = 64 * 1024 * 1024
#: About 40 megapixels (an 8K frame is 33): more is refused before it is decoded.
MAX_PIXELS = 40_000_000
MAX_JSON_CHARS = 4 * MAX_REQUEST_BYTES // 3 + 1024
CONFIDENCE_ENV = "YOLOPIPE_CONFIDENCE"
DEFAULT_CONFIDENCE = 0.25


class RequestRefused(ValueError):
    """A request this model cannot answer; `status` is the HTTP status the client gets."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _toolkit_error(exc: RequestRefused) -> Exception:
    """The toolkit's own error type (it sets the HTTP status from it); ours where it is absent."""
    try:
        from sagemaker_inference.errors import BaseInferenceToolkitError
    except ImportError:  # outside the serving container: `yolopipe predict`, the tests
        return exc
    return BaseInferenceToolkitError(exc.status, str(exc), "Bad Request" if exc.status == 400 else str(exc))


def _weights(model_dir: Path) -> Path:
    for name in ("best.pt", "last.pt"):
        if (model_dir / name).is_file():
            return model_dir / name
    raise FileNotFoundError(f"no best.pt or last.pt in {model_dir}: the model.tar.gz is not a yolopipe model")


def model_fn(model_dir: str) -> Any:
    """Load best.pt (else last.pt) with Ultralytics, offline: serving never downloads anything."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    return YOLO(str(_weights(Path(model_dir))), task="detect")


def decode_image(data: bytes) -> Any:
    """A PIL RGB image from JPEG/PNG bytes, bounded in bytes and pixels before anything is decoded."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_IMAGE_BYTES:
        raise RequestRefused(f"an image is {len(data)} bytes; send at most {MAX_IMAGE_BYTES} per image")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own bomb check, for any decoder that reads more
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise RequestRefused(f"an image is {width}x{height} pixels; send at most {MAX_PIXELS} pixels per image")
        if image.format not in ("JPEG", "PNG"):
            raise RequestRefused(f"an image is {image.format or 'of an unknown format'}; send JPEG or PNG")
        image.load()
        return image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise RequestRefused(f"an image cannot be read ({type(exc).__name__}); send JPEG or PNG") from None


def _read_s3(uri: str, budget: int) -> bytes:
    import boto3

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise RequestRefused(f"{uri!r} is not an S3 object URI; use s3://bucket/key")
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    data: bytes = body.read(min(MAX_IMAGE_BYTES, budget) + 1)
    body.close()
    if len(data) > min(MAX_IMAGE_BYTES, budget):
        raise RequestRefused(f"{uri} is larger than {min(MAX_IMAGE_BYTES, budget)} bytes; send smaller images")
    return data


def _json_images(text: str) -> list[bytes]:
    if len(text) > MAX_JSON_CHARS:
        raise RequestRefused(f"the JSON body is {len(text)} characters; send at most {MAX_JSON_CHARS}")
    try:
        items = json.loads(text)
    except ValueError:
        raise RequestRefused("the body is not JSON; send a JSON list of s3:// URIs or base64 images") from None
    if not isinstance(items, list) or not items or not all(isinstance(item, str) for item in items):
        raise RequestRefused("send a JSON list of strings: s3:// URIs or base64 images")
    if len(items) > MAX_IMAGES:
        raise RequestRefused(f"{len(items)} images in one request; send at most {MAX_IMAGES}")
    images: list[bytes] = []
    budget = MAX_REQUEST_BYTES
    for item in items:
        if item.startswith("s3://"):
            data = _read_s3(item, budget)
        else:
            encoded = item.split(",", 1)[1] if item.startswith("data:") else item
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise RequestRefused("an image is neither an s3:// URI nor valid base64") from None
        budget -= len(data)
        if budget < 0:
            raise RequestRefused(f"the images add up to more than {MAX_REQUEST_BYTES} bytes; send fewer")
        images.append(data)
    return images


def input_fn(request_body: Any, request_content_type: str) -> list[Any]:
    """The request's images, decoded: one for image/jpeg and image/png, a list for application/json."""
    try:
        content_type = (request_content_type or "").split(";")[0].strip().lower()
        if content_type in ("image/jpeg", "image/png"):
            data = bytes(request_body)
            if len(data) > MAX_REQUEST_BYTES:
                raise RequestRefused(f"the body is {len(data)} bytes; send at most {MAX_REQUEST_BYTES}")
            return [decode_image(data)]
        if content_type == "application/json":
            text = request_body.decode("utf-8") if isinstance(request_body, bytes | bytearray) else str(request_body)
            return [decode_image(data) for data in _json_images(text)]
        raise RequestRefused(f"content type {request_content_type!r} is not served; use one of "
                             f"{', '.join(CONTENT_TYPES)}", status=415)
    except RequestRefused as exc:
        raise _toolkit_error(exc) from None


def confidence() -> float:
    """The lowest confidence returned (YOLOPIPE_CONFIDENCE, 0 to 1)."""
    raw = os.environ.get(CONFIDENCE_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_CONFIDENCE
    except ValueError:
        value = DEFAULT_CONFIDENCE
    return value if 0.0 <= value <= 1.0 else DEFAULT_CONFIDENCE


def detections(result: Any) -> list[dict[str, Any]]:
    """One Ultralytics result as JSON-ready detections: class id, name, confidence, xyxy box in pixels."""
    boxes = result.boxes
    if boxes is None:
        return []
    names = result.names
    found = []
    for xyxy, conf, cls in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist(), strict=True):
        class_id = int(cls)
        found.append({"class_id": class_id, "name": str(names.get(class_id, class_id)),
                      "confidence": round(float(conf), 5), "box_xyxy": [round(float(v), 2) for v in xyxy]})
    return found


def predict_fn(images: list[Any], model: Any) -> list[dict[str, Any]]:
    """Run the model on the images at the training's image size; one entry per image."""
    train_args = (getattr(model, "ckpt", None) or {}).get("train_args") or {}
    imgsz = train_args.get("imgsz") or 640
    results = model.predict(images, conf=confidence(), imgsz=imgsz, verbose=False)
    return [{"width": result.orig_shape[1], "height": result.orig_shape[0], "detections": detections(result)}
            for result in results]


def output_fn(prediction: list[dict[str, Any]], accept: str) -> tuple[str, str]:
    """JSON detections; any Accept other than application/json (or */*) is refused with 406."""
    wanted = (accept or "application/json").split(";")[0].strip().lower()
    if wanted not in (*RESPONSE_TYPES, "*/*"):
        raise _toolkit_error(RequestRefused(f"accept {accept!r} is not served; use application/json", status=406))
    return json.dumps({"predictions": prediction}), RESPONSE_TYPES[0]
