"""Upload a local YOLO dataset to s3://<bucket>/datasets/<name>/: validated, parallel, resumable.

Order matters: every image and label goes first, `data.yaml` last, because the marker is what the
trigger listens for. An interrupted upload never wrote the marker, so nothing started; running it
again compares sizes and ETags (MD5 for single-part objects, MD5-of-parts for multipart ones)
and sends only what is missing or changed. `trigger=False` leaves the marker out.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from yolopipe.direct_put import DirectPut
from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.layout import MARKER_FILE, dataset_version

DATASETS_PREFIX = "datasets/"
#: Files above this go in parts (boto3's default too); the ETag check computes parts the same way.
MULTIPART_THRESHOLD = 8 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
DEFAULT_WORKERS = 32
#: Parts in flight for multipart files: `aws s3 cp`'s default. 8 MiB parts fill a link with fewer
#: streams than small files need to hide latency; more only added contention (bench/README.md).
LARGE_CONCURRENCY = 10
EXPECT_CONTINUE_THRESHOLD = 2 * 1024 * 1024
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}")
#: Never uploaded: hidden files/folders (.DS_Store, .git) and Ultralytics' label caches.
_SKIP_SUFFIXES = (".cache",)

Progress = Callable[[int, int], None]  # (files done, bytes done) increments


@dataclass(frozen=True)
class LocalFile:
    path: Path
    key: str
    size: int


@dataclass
class UploadPlan:
    """What an upload would do: files to send, files already there, the marker, stale objects."""

    bucket: str
    prefix: str
    to_send: list[LocalFile]
    up_to_date: list[LocalFile]
    marker: LocalFile | None
    marker_up_to_date: bool
    stale_keys: list[str]
    #: Links (files or folders) whose target lies outside the dataset folder: never uploaded.
    outside_links: list[Path] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """What the user should know before sending (one line each)."""
        return link_warnings(len(self.outside_links))

    @property
    def bytes_to_send(self) -> int:
        return sum(f.size for f in self.to_send)


@dataclass
class UploadResult:
    bucket: str
    prefix: str
    uploaded: int = 0
    skipped: int = 0
    bytes_sent: int = 0
    deleted: int = 0
    marker_written: bool = False
    #: When S3 stored the marker (its LastModified): executions the trigger starts come after.
    marker_time: datetime | None = None
    #: The marker's version (versionId, else ETag): the trigger's refusal record is named after it.
    marker_version: str = ""
    seconds: float = 0.0
    files: list[str] = field(default_factory=list, repr=False)
    #: Links out of the dataset folder that were not followed (see UploadPlan.outside_links).
    skipped_links: int = 0

    @property
    def warnings(self) -> list[str]:
        return link_warnings(self.skipped_links)

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "s3_uri": self.s3_uri,
            "uploaded": self.uploaded,
            "skipped": self.skipped,
            "bytes_sent": self.bytes_sent,
            "deleted": self.deleted,
            "marker_written": self.marker_written,
            "seconds": round(self.seconds, 3),
            "skipped_links": self.skipped_links,
            "warnings": self.warnings,
        }


def link_warnings(count: int) -> list[str]:
    if not count:
        return []
    links = "link that points" if count == 1 else "links that point"
    return [f"skipped {count} {links} outside the dataset (never uploaded); copy what training needs into it"]


class UploadInterrupted(YolopipeError):
    """The upload stopped part-way; the marker was not written, so nothing was triggered."""


def dataset_prefix(name: str) -> str:
    """`cats` -> `datasets/cats/`, refusing names S3 keys or the trigger would trip on."""
    if not _NAME.fullmatch(name):
        raise YolopipeError(
            f"dataset name {name!r} is not valid: use letters, digits, '.', '_' or '-' (at most 128), "
            "starting with a letter or digit"
        )
    return f"{DATASETS_PREFIX}{name}/"


def local_files(root: Path, prefix: str, outside: list[Path] | None = None) -> tuple[
        list[LocalFile], LocalFile | None]:
    """Every file under `root` as an S3 key under `prefix` (sorted), and the marker apart.

    A link whose target lies outside `root` (`id_rsa -> ~/.ssh/id_rsa`) is never followed: it goes
    to `outside` instead, so the caller can say so.
    """
    files: list[LocalFile] = []
    marker: LocalFile | None = None
    found: list[Path] = []
    for path in sorted(_walk(root, root.resolve(), found)):
        rel = path.relative_to(root).as_posix()
        item = LocalFile(path, prefix + rel, path.stat().st_size)
        if rel == MARKER_FILE:
            marker = item
        else:
            files.append(item)
    if outside is not None:
        outside.extend(sorted(found))
    return files, marker


def _walk(folder: Path, real_root: Path, outside: list[Path]) -> Iterator[Path]:
    for path in folder.iterdir():
        if path.name.startswith("."):
            continue
        if path.is_symlink() and (path.is_dir() or path.is_file()) and \
                not path.resolve().is_relative_to(real_root):
            outside.append(path)
            continue
        if path.is_dir():
            if not path.is_symlink():  # as the validator: symlinked folders are not followed (no loops)
                yield from _walk(path, real_root, outside)
        elif path.is_file() and not path.name.endswith(_SKIP_SUFFIXES):
            yield path


def local_etag(path: Path, size: int) -> str:
    """The ETag S3 gives this file when uploaded our way: MD5, or MD5 of part MD5s + '-N'."""
    if size < MULTIPART_THRESHOLD:
        return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    digests = []
    with path.open("rb") as handle:
        while chunk := handle.read(PART_SIZE):
            digests.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def remote_objects(s3: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """key -> (size, ETag without quotes) for everything under the prefix."""
    found: dict[str, tuple[int, str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents") or []:
            found[item["Key"]] = (int(item["Size"]), str(item.get("ETag", "")).strip('"'))
    return found


def _same(item: LocalFile, remote: tuple[int, str] | None) -> bool:
    if remote is None or remote[0] != item.size:
        return False
    return local_etag(item.path, item.size) == remote[1]


def plan_upload(s3: Any, root: str | Path, bucket: str, name: str) -> UploadPlan:
    """Compare the local dataset with what is already under s3://bucket/datasets/<name>/."""
    root = Path(root)
    if not (root / MARKER_FILE).is_file():
        raise YolopipeError(f"{root} has no {MARKER_FILE} at its root: is this a YOLO dataset folder?")
    prefix = dataset_prefix(name)
    outside: list[Path] = []
    files, marker = local_files(root, prefix, outside)
    if root / MARKER_FILE in outside:
        raise YolopipeError(f"{root / MARKER_FILE} is a link to {(root / MARKER_FILE).resolve()}, outside the "
                            f"dataset folder: copy the file into {root}")
    remote = remote_objects(s3, bucket, prefix)
    to_send: list[LocalFile] = []
    up_to_date: list[LocalFile] = []
    for item in files:
        (up_to_date if _same(item, remote.get(item.key)) else to_send).append(item)
    local_keys = {f.key for f in files} | ({marker.key} if marker else set())
    stale = sorted(key for key in remote if key not in local_keys)
    marker_ok = marker is not None and _same(marker, remote.get(marker.key))
    return UploadPlan(bucket, prefix, to_send, up_to_date, marker, marker_ok, stale, outside)


def without_small_expect_continue(s3: Any) -> Any:
    """Drop botocore's `Expect: 100-continue` on PutObject bodies under 2 MiB, in place.

    100-continue costs a round trip per object before the body is sent; it only pays off for
    large bodies a server may refuse. The Go SDK's upload manager does the same below 2 MiB.
    """
    if not getattr(s3.meta, "_yolopipe_no_small_continue", False):
        s3.meta.events.register("before-sign.s3.PutObject", _drop_expect_header)
        s3.meta._yolopipe_no_small_continue = True
    return s3


def _drop_expect_header(request: Any, **_: Any) -> None:
    if "Expect" not in request.headers:
        return
    body = request.body
    decoded = request.headers.get("X-Amz-Decoded-Content-Length")  # HTTPS: an aws-chunked body with a checksum
    length = int(decoded) if decoded else len(body.getvalue()) if hasattr(body, "getvalue") \
        else len(body) if isinstance(body, bytes) else None
    if length is not None and length < EXPECT_CONTINUE_THRESHOLD:
        del request.headers["Expect"]


def _content_type(item: LocalFile) -> str:
    return mimetypes.guess_type(item.path.name)[0] or "application/octet-stream"


def _put(s3: Any, bucket: str, item: LocalFile) -> dict[str, Any]:
    """One file through botocore: PutObject (its response), or in parts from MULTIPART_THRESHOLD up (a
    data.yaml that large; no response: {})."""
    content_type = _content_type(item)
    if item.size < MULTIPART_THRESHOLD:
        return dict(s3.put_object(Bucket=bucket, Key=item.key, Body=item.path.read_bytes(), ContentType=content_type))
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=PART_SIZE,
                            use_threads=False)
    s3.upload_file(str(item.path), bucket, item.key, ExtraArgs={"ContentType": content_type}, Config=config)
    return {}


def upload_dataset(
    s3: Any,
    root: str | Path,
    bucket: str,
    name: str,
    *,
    trigger: bool = True,
    delete_stale: bool = False,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
    plan: UploadPlan | None = None,
) -> UploadResult:
    """Send what is missing in parallel, then (if `trigger`) data.yaml last.

    `s3` is a boto3 S3 client (give it `max_pool_connections >= workers`). Validate the dataset
    before calling this (the CLI does): an upload does not judge the content.
    """
    started = time.perf_counter()
    without_small_expect_continue(s3)
    plan = plan or plan_upload(s3, root, bucket, name)
    result = UploadResult(bucket, plan.prefix, skipped=len(plan.up_to_date), skipped_links=len(plan.outside_links))
    if plan.to_send:
        _send_all(s3, bucket, plan.to_send, workers, progress, result)
    if delete_stale and plan.stale_keys:
        for start in range(0, len(plan.stale_keys), 1000):
            batch = plan.stale_keys[start:start + 1000]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        result.deleted = len(plan.stale_keys)
    # The marker goes last and only if something changed (or it did): a re-run of a finished
    # upload must not start a second training on the same data.
    if trigger and plan.marker is not None and (result.uploaded or result.deleted or not plan.marker_up_to_date):
        written = _put(s3, bucket, plan.marker)
        result.bytes_sent += plan.marker.size
        result.uploaded += 1
        result.marker_written = True
        # When and which: from the PUT's own response (its Date, to the second as Last-Modified is;
        # VersionId, ETag), not a HEAD after it: one round trip less on every upload. A HEAD where
        # there is no such response (a stub without headers, a multipart upload).
        date = written.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if date:
            result.marker_time = parsedate_to_datetime(date)
        else:
            written = s3.head_object(Bucket=bucket, Key=plan.marker.key)
            result.marker_time = written.get("LastModified")
        result.marker_version = dataset_version(written.get("VersionId"), written.get("ETag"))
        if progress:
            progress(1, plan.marker.size)
    elif plan.marker is not None and plan.marker_up_to_date:
        result.skipped += 1
    result.seconds = time.perf_counter() - started
    return result


def _send_all(s3: Any, bucket: str, items: list[LocalFile], workers: int, progress: Progress | None,
              result: UploadResult) -> None:
    large = [item for item in items if item.size >= MULTIPART_THRESHOLD]
    if large:  # first, on their own: their parts and the small files' PUTs would share one connection pool
        _send_large(s3, bucket, large, workers, progress, result)
        items = [item for item in items if item.size < MULTIPART_THRESHOLD]
    if not items:
        return
    executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="yolopipe-upload")
    futures: dict[Future[int], LocalFile] = {}
    first, rest = items[0], items[1:]
    first_sent = False
    try:
        # The first file through put_object shows the route; the rest take it directly (direct_put.py).
        direct = DirectPut.learn(s3, first.key, lambda: _put(s3, bucket, first))
        first_sent = True
        _count(result, progress, first.size)
        futures = {executor.submit(_put_small, s3, bucket, item, direct): item for item in rest}
        # as_completed waits on each future once; a wait() loop re-arms every pending one each time
        for future in as_completed(futures):
            _count(result, progress, future.result())  # re-raises the first failure; the rest are cancelled
    except BaseException as error:
        executor.shutdown(wait=True, cancel_futures=True)
        sent = first_sent + sum(1 for f in futures if f.done() and not f.cancelled() and f.exception() is None)
        if isinstance(error, KeyboardInterrupt):
            raise UploadInterrupted(
                f"interrupted after {sent} of {len(items)} files; data.yaml not written, nothing started: "
                "run the same command again to send the rest"
            ) from error
        raise
    executor.shutdown(wait=True)


def _count(result: UploadResult, progress: Progress | None, size: int) -> None:
    result.uploaded += 1
    result.bytes_sent += size
    if progress:
        progress(1, size)


def _put_small(s3: Any, bucket: str, item: LocalFile, direct: DirectPut | None) -> int:
    if direct is None or not direct.usable or not direct.put(item.key, item.path.read_bytes(), _content_type(item)):
        _put(s3, bucket, item)  # botocore: its retries, its errors
    return item.size


def _send_large(s3: Any, bucket: str, items: list[LocalFile], workers: int, progress: Progress | None,
                result: UploadResult) -> None:
    """Multipart files through one s3transfer manager, as `aws s3 cp` does: the parts of every file go in
    parallel (LARGE_CONCURRENCY at a time, fewer if `workers` says so), not one file per thread with its
    parts in sequence (3 files of 64 MiB were 3 streams). Parts of PART_SIZE, so local_etag still predicts
    the ETag."""
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=PART_SIZE,
                            max_concurrency=max(1, min(workers, LARGE_CONCURRENCY)), use_threads=True)
    manager = create_transfer_manager(s3, config)
    try:
        futures = [(manager.upload(str(item.path), bucket, item.key, extra_args={"ContentType": _content_type(item)}),
                    item) for item in items]
        for future, item in futures:
            future.result()  # re-raises the transfer's failure
            _count(result, progress, item.size)
    except BaseException as error:
        manager.shutdown(cancel=True)
        if isinstance(error, KeyboardInterrupt):
            raise UploadInterrupted(
                f"interrupted after {result.uploaded} large files; data.yaml not written, nothing started: "
                "run the same command again to send the rest"
            ) from error
        raise
    manager.shutdown()
