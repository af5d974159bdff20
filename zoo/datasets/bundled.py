"""The small public tables shipped inside the package (`zoo/datasets/files/`, with their
licenses and citations in its README): the copy a loader uses when the cache holds none and
no other file or URL was given, so that a fresh machine trains offline.

A plain CSV is read where it lies. A compressed one is written out to the cache once,
atomically and checked against the same SHA-256 as a download.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from zoo.datasets.cache import CacheUnwritable, data_dir, write_verified
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

    def unpack(out) -> None:
        with gzip.open(packed, "rb") as source:
            shutil.copyfileobj(source, out)

    def corrupt(_temp: Path) -> DatasetError:
        return DatasetError(f"dataset '{dataset}': the shipped {packed.name} is corrupt; reinstall the zoo")

    try:
        return write_verified(data_dir() / filename, unpack, f"sha256:{sha256}", corrupt)
    except CacheUnwritable:
        return None  # the caller downloads, or says why it cannot
