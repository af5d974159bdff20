"""The dataset cache: find a file locally, or download it once, verified and atomically.

Every downloaded byte is checked against a published checksum before the file is renamed
into the cache, so a reader never sees a half-written or corrupt file under its final
name, and a file already in the cache is never downloaded again.

Why not pooch (`pooch.retrieve(url, known_hash)` does the same download-verify-rename): the
shipped copies go into the cache through the same `write_verified`, and each failure has a
tested message of its own (a length that lies says "truncated: N of M bytes", an unwritable
cache names $ZOO_DATA_DIR); with pooch each would be a translation of requests' and pooch's
exceptions, and two more dependencies, for the 60 lines below.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from zoo.errors import DatasetError

DATA_DIR_VARIABLE = "ZOO_DATA_DIR"
DEFAULT_DATA_DIR = "data"
_CHUNK = 1 << 20
_TIMEOUT_SECONDS = 60


def data_dir() -> Path:
    """The cache folder: $ZOO_DATA_DIR, or ./data."""
    return Path(os.environ.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """A file's hex digest, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_matches(path: Path, checksum: str) -> bool:
    """True when `path` has `checksum`, written as "sha256:<hex>" or "md5:<hex>"."""
    algorithm, _, expected = checksum.partition(":")
    return file_digest(path, algorithm) == expected.lower()


def fetch(dataset: str, filename: str, url: str, checksum: str | None) -> Path:
    """Return the cached path of `filename`, downloading it from `url` if it is missing.

    Args:
        dataset: the dataset's name, for error messages.
        filename: the file's path inside the cache folder ("fashion-mnist/x.gz").
        url: where to download it from.
        checksum: "sha256:<hex>" (or "md5:<hex>" where only that is published) that a
            download must match; None accepts any download (user-supplied URLs).

    Raises:
        DatasetError: the file is missing and could not be downloaded, or the download
            does not match its checksum or its announced length.
    """
    target = data_dir() / filename
    if target.is_file():
        return target

    def corrupt(temp: Path) -> DatasetError:
        algorithm = checksum.partition(":")[0]
        return DatasetError(
            f"dataset '{dataset}': the download from {url} is corrupt or truncated: "
            f"{algorithm} {file_digest(temp, algorithm)}, expected {checksum}"
        )

    try:
        return write_verified(target, lambda out: _download(dataset, url, target, out), checksum, corrupt)
    except CacheUnwritable as error:
        raise DatasetError(
            f"dataset '{dataset}': {target} is not in the cache and the cache folder cannot be "
            f"written ({error.strerror}); set {DATA_DIR_VARIABLE} to a writable folder"
        ) from None


class CacheUnwritable(OSError):
    """The cache folder cannot hold a new file (it cannot be created, or written in)."""


def write_verified(target: Path, write: Callable[[BinaryIO], None], checksum: str | None,
                   corrupt: Callable[[Path], Exception]) -> Path:
    """Put a file into the cache so that no reader ever sees it half-written or wrong.

    `write` fills a temporary file beside `target`; only if it matches `checksum` ("sha256:<hex>",
    "md5:<hex>"; None: any) is it renamed into place. Otherwise `corrupt(temp)` is raised, and
    nothing is left behind either way.

    Raises:
        CacheUnwritable: the folder cannot be created or written in.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as error:
        raise CacheUnwritable(error.errno, error.strerror) from None
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        if checksum and not checksum_matches(temp, checksum):
            raise corrupt(temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def _download(dataset: str, url: str, target: Path, out) -> None:
    received = 0
    announced = None
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as response:
            announced = response.headers.get("Content-Length")
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                received += len(chunk)
    except http.client.IncompleteRead as error:
        received += len(error.partial)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise DatasetError(
            f"dataset '{dataset}': {target} is not in the cache and downloading {url} failed "
            f"({reason}); put the file there, or set {DATA_DIR_VARIABLE} to a folder that has it"
        ) from None
    # The server may close early with or without saying so; compare against what it announced.
    if announced is not None and received != int(announced):
        raise DatasetError(
            f"dataset '{dataset}': the download from {url} is truncated: "
            f"{received} of {announced} bytes"
        )
