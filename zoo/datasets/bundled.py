"""The small public tables shipped inside the package (`zoo/datasets/files/`, with their
licenses and citations in its README): the copy a loader uses when the cache holds none and
no other file or URL was given, so that a fresh machine trains offline.

A plain CSV is read where it lies. A compressed one is written out to the cache once,
atomically and checked against the same SHA-256 as a download.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

from zoo.datasets.cache import checksum_matches, data_dir
from zoo.errors import DatasetError

FILES = Path(__file__).with_name("files")


def bundled_copy(dataset: str, filename: str, sha256: str) -> Path | None:
    """The shipped copy of `filename` (a path to read), or None if it is not shipped."""
    plain = FILES / filename
    if plain.is_file():
        return plain
    packed = FILES / f"{filename}.gz"
    if not packed.is_file():
        return None
    target = data_dir() / filename
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError:
        return None  # an unwritable cache: the caller downloads, or says why it cannot
    try:
        with os.fdopen(handle, "wb") as out, gzip.open(packed, "rb") as source:
            shutil.copyfileobj(source, out)
        if not checksum_matches(Path(temp), f"sha256:{sha256}"):
            raise DatasetError(f"dataset '{dataset}': the shipped {packed.name} is corrupt; reinstall the zoo")
        os.replace(temp, target)
    finally:
        Path(temp).unlink(missing_ok=True)
    return target
