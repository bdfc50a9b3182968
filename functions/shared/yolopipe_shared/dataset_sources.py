"""Where a dataset lies: a local folder or an S3 prefix, seen the way validation needs it.

Validation lists every file once (path relative to the dataset root -> size) and then reads a
few small text files (data.yaml, .txt image lists, a sample of labels). Both sources expose just
that, so the same rules run in the trigger (S3), the CLI (local) and train.py (local channel).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from .errors import YolopipeError


class DatasetUnreadable(YolopipeError):
    """The dataset's storage could not be listed or read (missing folder or bucket, access denied)."""


class DatasetSource(Protocol):
    """What `validate_dataset` needs from where a dataset lies. Paths are POSIX, relative to the root."""

    @property
    def location(self) -> str:
        """Where the dataset lies, for messages: a folder or an s3:// URI ending in /."""
        ...

    def list_files(self) -> dict[str, int]:
        """Every file under the root, relative path -> size in bytes (one listing)."""
        ...

    def read_bytes(self, path: str, *, max_bytes: int) -> bytes | None:
        """At most `max_bytes + 1` bytes of `path` (so a caller can tell it is too large); None if missing."""
        ...

    def read_many(self, paths: Iterable[str], *, max_bytes: int) -> dict[str, bytes | None]:
        """`read_bytes` for many small files at once (in parallel where that helps)."""
        ...


class LocalDatasetSource:
    """A dataset in a local folder.

    Symlinked folders are followed, as Ultralytics' glob follows them (`images -> /data/coco/images`
    is common), each real folder once: a link loop cannot hang the listing.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def list_files(self) -> dict[str, int]:
        if not self.root.is_dir():
            raise DatasetUnreadable(f"{self.root} is not a folder; give the folder that holds data.yaml")
        files: dict[str, int] = {}
        root_stat = os.stat(self.root)
        seen = {(root_stat.st_dev, root_stat.st_ino)}
        stack: list[tuple[str, str]] = [(str(self.root), "")]
        while stack:
            folder, prefix = stack.pop()
            try:
                entries = os.scandir(folder)
            except OSError as exc:
                raise DatasetUnreadable(f"cannot list {folder}: {exc.strerror}") from exc
            with entries:
                for entry in entries:
                    rel = prefix + entry.name
                    try:
                        if entry.is_dir():
                            if entry.is_symlink():
                                target = entry.stat()
                                if (target.st_dev, target.st_ino) in seen:
                                    continue
                                seen.add((target.st_dev, target.st_ino))
                            stack.append((entry.path, rel + "/"))
                        elif entry.is_file():
                            files[rel] = entry.stat().st_size
                    except OSError:  # a dangling symlink or a file removed while listing
                        continue
        return files

    def read_bytes(self, path: str, *, max_bytes: int) -> bytes | None:
        try:
            fd = os.open(os.path.join(self.root, path), os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            if not self.root.is_dir():
                raise DatasetUnreadable(f"{self.root} is not a folder; give the folder that holds data.yaml") from None
            return None
        except OSError as exc:
            raise DatasetUnreadable(f"cannot read {self.root / path}: {exc.strerror}") from exc
        try:
            # os.read, not open().read(n): no n-byte buffer per call, no Python file object
            chunks, wanted = [], max_bytes + 1
            while wanted > 0:
                chunk = os.read(fd, min(wanted, 1 << 16))
                chunks.append(chunk)
                wanted -= len(chunk)
                if len(chunk) < min(wanted + len(chunk), 1 << 16):  # a short read: end of file
                    break
            return b"".join(chunks)
        except IsADirectoryError:
            return None
        except OSError as exc:
            raise DatasetUnreadable(f"cannot read {self.root / path}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def read_many(self, paths: Iterable[str], *, max_bytes: int) -> dict[str, bytes | None]:
        # Sequential: threads were slower here (label files are small; the GIL, not the disk, is the limit)
        return {path: self.read_bytes(path, max_bytes=max_bytes) for path in paths}


class S3DatasetSource:
    """A dataset under `s3://bucket/prefix/`: one paginated ListObjectsV2, parallel GetObjects."""

    def __init__(self, s3_client: Any, bucket: str, prefix: str, *, max_workers: int = 16) -> None:
        self.s3 = s3_client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.max_workers = max_workers

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def list_files(self) -> dict[str, int]:
        from botocore.exceptions import BotoCoreError, ClientError

        files: dict[str, int] = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", ()):
                    rel = obj["Key"][len(self.prefix) :]
                    if rel and not rel.endswith("/"):  # "folder" placeholder objects hold nothing
                        files[rel] = int(obj.get("Size", 0))
        except (ClientError, BotoCoreError) as exc:
            raise DatasetUnreadable(f"cannot list {self.location}: {_error_code(exc)}") from exc
        return files

    def read_bytes(self, path: str, *, max_bytes: int) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.prefix + path
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes}")
        except (ClientError, BotoCoreError) as exc:
            code = _error_code(exc)
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            if code == "InvalidRange":  # a zero-byte object cannot serve a range
                return b""
            raise DatasetUnreadable(f"cannot read s3://{self.bucket}/{key}: {code}") from exc
        body = response["Body"]
        try:
            data: bytes = body.read(max_bytes + 1)
        finally:
            body.close()
        return data

    def read_many(self, paths: Iterable[str], *, max_bytes: int) -> dict[str, bytes | None]:
        paths = list(paths)
        if len(paths) <= 1:
            return {path: self.read_bytes(path, max_bytes=max_bytes) for path in paths}
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(paths))) as pool:
            contents = pool.map(lambda path: self.read_bytes(path, max_bytes=max_bytes), paths)
            return dict(zip(paths, contents, strict=True))


def _error_code(exc: Exception) -> str:
    """botocore's error code (NoSuchBucket, AccessDenied...), or the exception's class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__
