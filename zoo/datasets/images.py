"""Image sources: Fashion-MNIST from its IDX files, and scikit-learn's bundled 8x8 digits.

Images are one named input, "image", of shape (height, width) with raw pixel values; the
models rescale inside, so a client sends the pixels it has.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from zoo.datasets.base import Table, register_dataset
from zoo.datasets.cache import fetch
from zoo.errors import DatasetError

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_URL_VARIABLE = "ZOO_FASHION_MNIST_URL"
# Zalando publishes MD5 checksums for these files, not SHA-256: we check what is published.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_IDX_UBYTE = 0x08


@register_dataset(
    "fashion-mnist",
    task="multiclass",
    description="Fashion-MNIST (70000 28x28 grey images, 10 classes), canonical 60000/10000 split",
)
def fashion_mnist(*, base_url: str | None = None, checksums: dict[str, str] | None = None) -> Table:
    """Fashion-MNIST from the four IDX gz files.

    Args:
        base_url: the mirror to download from; default $ZOO_FASHION_MNIST_URL, else
            Zalando's canonical mirror.
        checksums: file name -> "md5:<hex>" or "sha256:<hex>", for a mirror that serves
            other files; default the published checksums.
    """
    base = base_url or os.environ.get(FASHION_MNIST_URL_VARIABLE) or FASHION_MNIST_URL
    base = base if base.endswith("/") else base + "/"
    checksums = FASHION_MNIST_FILES if checksums is None else checksums
    cache = Path("fashion-mnist")
    arrays = {}
    for filename in FASHION_MNIST_FILES:
        path = fetch("fashion-mnist", str(cache / filename), base + filename, checksums.get(filename))
        arrays[filename] = read_idx("fashion-mnist", path)
    train_images, train_labels = arrays["train-images-idx3-ubyte.gz"], arrays["train-labels-idx1-ubyte.gz"]
    test_images, test_labels = arrays["t10k-images-idx3-ubyte.gz"], arrays["t10k-labels-idx1-ubyte.gz"]
    for images, labels, part in ((train_images, train_labels, "train"), (test_images, test_labels, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(
                f"dataset 'fashion-mnist': the {part} files do not match: images {images.shape}, "
                f"labels {labels.shape}"
            )
    test = Table({"image": test_images}, test_labels.astype(np.int64), "label", base,
                 class_names=FASHION_MNIST_CLASSES)
    return Table({"image": train_images}, train_labels.astype(np.int64), "label", base,
                 class_names=FASHION_MNIST_CLASSES, test=test)


def read_idx(dataset: str, path: Path) -> np.ndarray:
    """Parse a (gzipped) IDX file of unsigned bytes, checking its header against its size."""
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"dataset '{dataset}': {path} is corrupt or truncated ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE:
        raise DatasetError(f"dataset '{dataset}': {path} is not an IDX file of unsigned bytes")
    rank = data[3]
    header = 4 + 4 * rank
    if len(data) < header:
        raise DatasetError(f"dataset '{dataset}': {path} is truncated inside its header")
    shape = struct.unpack(f">{rank}I", data[4:header])
    expected = int(np.prod(shape)) if rank else 0
    if len(data) - header != expected:
        raise DatasetError(
            f"dataset '{dataset}': {path} is corrupt or truncated: its header announces shape "
            f"{shape} ({expected} bytes), it holds {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


@register_dataset(
    "digits",
    task="multiclass",
    description="scikit-learn's bundled 8x8 digits (1797 images, pixels 0..16), offline",
)
def digits() -> Table:
    """scikit-learn's 8x8 digits (bundled with it, so always offline)."""
    from sklearn.datasets import load_digits  # sklearn is slow to import; only here

    bunch = load_digits()
    return Table(
        {"image": bunch.images.astype(np.float64)}, bunch.target.astype(np.int64), "digit",
        "sklearn.datasets.load_digits", class_names=tuple(str(d) for d in range(10)),
    )
