"""Where a dataset lies: a local folder or an S3 prefix, seen the way validation needs it.

Validation lists every file once (path relative to the dataset root -> size) and then reads a
few small text files (data.yaml, .txt image lists, a sample of labels). Both sources expose just
that, so the same rules run in the trigger (S3), the CLI (local) and train.py (local channel).

A listing is kept compact (Listing: sorted paths and a parallel array of sizes, ~100 bytes a file
against ~200 in a dict) and may be capped (`max_files`): the trigger's memory is fixed.
"""

from __future__ import annotations

import bisect
import os
from array import array
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from .errors import YolopipeError


class DatasetUnreadable(YolopipeError):
    """The dataset's storage could not be listed or read (missing folder or bucket, access denied)."""


class NotADatasetFolder(DatasetUnreadable):
    """The local path given as a dataset is not a folder (a wrong argument: the CLI exits 2)."""


class TooManyFiles(YolopipeError):
    """The dataset holds more files than the caller can validate (`max_files`)."""

    def __init__(self, location: str, max_files: int) -> None:
        super().__init__(f"{location} holds more than {max_files:,} files")
        self.max_files = max_files


class Listing(Mapping[str, int]):
    """Every file of a dataset: relative path -> size, as two parallel sorted arrays.

    A read-only mapping (so `listing == {...}` and `listing.get(path)` work); `paths` is sorted, which
    is what validation needs to find the files under a folder.
    """

    __slots__ = ("paths", "sizes")

    def __init__(self, paths: list[str], sizes: array[int]) -> None:
        if any(paths[i] > paths[i + 1] for i in range(len(paths) - 1)):
            order = sorted(range(len(paths)), key=paths.__getitem__)
            paths, sizes = [paths[i] for i in order], array("q", (sizes[i] for i in order))
        self.paths = paths
        self.sizes = sizes

    @classmethod
    def of(cls, files: Mapping[str, int]) -> Listing:
        return cls(list(files), array("q", files.values()))

    def index(self, path: str) -> int:
        """Position of `path` in `paths`, or -1."""
        i = bisect.bisect_left(self.paths, path)
        if i < len(self.paths) and self.paths[i] == path:
            return i
        return -1

    def __getitem__(self, path: str) -> int:
        i = self.index(path)
        if i < 0:
            raise KeyError(path)
        return self.sizes[i]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.index(path) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def under(self, folder: str) -> list[str]:
        """The paths below `folder` ("" or "." for all), in order."""
        if folder in ("", "."):
            return self.paths
        prefix = folder.rstrip("/") + "/"
        # "0" sorts right after "/": [prefix, prefix[:-1] + "0") holds exactly the paths under the folder
        return self.paths[bisect.bisect_left(self.paths, prefix): bisect.bisect_left(self.paths, prefix[:-1] + "0")]


class _Collector:
    """Builds a Listing file by file, refusing more than `max_files`."""

    def __init__(self, location: str, max_files: int | None) -> None:
        self.location, self.max_files = location, max_files
        self.paths: list[str] = []
        self.sizes: array[int] = array("q")

    def add(self, path: str, size: int) -> None:
        if self.max_files is not None and len(self.paths) >= self.max_files:
            raise TooManyFiles(self.location, self.max_files)
        self.paths.append(path)
        self.sizes.append(size)

    def listing(self) -> Listing:
        return Listing(self.paths, self.sizes)


class DatasetSource(Protocol):
    """What `validate_dataset` needs from where a dataset lies. Paths are POSIX, relative to the root."""

    @property
    def location(self) -> str:
        """Where the dataset lies, for messages: a folder or an s3:// URI ending in /."""
        ...

    def list_files(self, *, max_files: int | None = None) -> Listing:
        """Every file under the root, relative path -> size in bytes (one listing); TooManyFiles past
        `max_files`."""
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

    def list_files(self, *, max_files: int | None = None) -> Listing:
        if not self.root.is_dir():
            raise NotADatasetFolder(f"{self.root} is not a folder; give the folder that holds data.yaml")
        files = _Collector(self.location, max_files)
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
                            files.add(rel, entry.stat().st_size)
                    except OSError:  # a dangling symlink or a file removed while listing
                        continue
        return files.listing()

    def read_bytes(self, path: str, *, max_bytes: int) -> bytes | None:
        try:
            fd = os.open(os.path.join(self.root, path), os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            if not self.root.is_dir():
                raise NotADatasetFolder(f"{self.root} is not a folder; give the folder that holds data.yaml") from None
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

    def list_files(self, *, max_files: int | None = None) -> Listing:
        from botocore.exceptions import BotoCoreError, ClientError

        files = _Collector(self.location, max_files)
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", ()):
                    rel = obj["Key"][len(self.prefix) :]
                    if rel and not rel.endswith("/"):  # "folder" placeholder objects hold nothing
                        files.add(rel, int(obj.get("Size", 0)))
        except (ClientError, BotoCoreError) as exc:
            raise DatasetUnreadable(f"cannot list {self.location}: {_error_code(exc)}") from exc
        return files.listing()

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
