"""Downloads: from a real HTTP server on 127.0.0.1, verified, atomic, never repeated."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from zoo.datasets import load_dataset
from zoo.datasets.images import read_idx
from zoo.errors import DatasetError

REFERENCE = Path(os.environ["ZOO_DATA_DIR"])


class FileServer:
    """Serves `files` (path -> bytes); paths in `truncate` announce more bytes than they send."""

    def __init__(self, files: dict[str, bytes], truncate: tuple[str, ...] = ()):
        self.files, self.truncate, self.requests = files, truncate, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in server.truncate else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ZOO_DATA_DIR", str(folder))
    return folder


@pytest.fixture()
def serve():
    servers = []

    def start(files, truncate=()):
        servers.append(FileServer(files, truncate))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_download_is_verified_cached_and_never_repeated(cache, serve):
    wine = (REFERENCE / "winequality-red.csv").read_bytes()
    server = serve({"/wine.csv": wine})
    data = load_dataset("red-wine", url=f"{server.url}/wine.csv")
    assert (cache / "winequality-red.csv").read_bytes() == wine
    assert sum(data.split["rows"].values()) == 1599
    server.close()
    again = load_dataset("red-wine")  # the canonical URL is never asked: the cache has it
    np.testing.assert_array_equal(again.test.target, data.test.target)
    assert server.requests == ["/wine.csv"]


def test_a_truncated_download_is_rejected_and_leaves_nothing(cache, serve):
    server = serve({"/wine.csv": (REFERENCE / "winequality-red.csv").read_bytes()}, truncate=("/wine.csv",))
    with pytest.raises(DatasetError, match=r"truncated: \d+ of \d+ bytes"):
        load_dataset("red-wine", url=f"{server.url}/wine.csv")
    assert list(cache.iterdir()) == []


def test_a_download_with_the_wrong_checksum_is_rejected(cache, serve):
    server = serve({"/wine.csv": b"not,the,wine,data\n1,2,3,4\n"})
    # A user URL is checked by parsing; the canonical file by its SHA-256 (tested below).
    with pytest.raises(DatasetError, match="does not have the expected columns"):
        load_dataset("red-wine", url=f"{server.url}/wine.csv")
    from zoo.datasets.cache import fetch

    with pytest.raises(DatasetError, match="corrupt or truncated: sha256 .* expected sha256:00"):
        fetch("red-wine", "other.csv", f"{server.url}/wine.csv", "sha256:" + "0" * 64)
    assert not (cache / "other.csv").exists()
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []


def test_no_file_and_no_network_names_the_dataset_url_and_variable(cache):
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/winequality-red.csv"
    with pytest.raises(DatasetError) as error:
        load_dataset("red-wine", url=url)
    message = str(error.value)
    assert "red-wine" in message and url in message and "ZOO_DATA_DIR" in message


def _idx(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def _fashion_files(rng, train=60, test=20):
    return {
        "train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (train, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx(np.arange(train) % 10),
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (test, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx(np.arange(test) % 10),
    }


def _md5(files):
    return {name: "md5:" + hashlib.md5(body).hexdigest() for name, body in files.items()}


def test_fashion_mnist_loads_idx_files_from_a_mirror(cache, serve):
    files = _fashion_files(np.random.default_rng(0))
    server = serve({f"/fashion/{name}": body for name, body in files.items()})
    data = load_dataset("fashion-mnist", base_url=f"{server.url}/fashion", checksums=_md5(files))
    assert data.split["canonical_test_set"] and len(data.test) == 20
    assert len(data.train) + len(data.validation) == 60
    assert data.features[0].shape == (28, 28) and data.class_names[9] == "Ankle boot"
    assert sorted(p.name for p in (cache / "fashion-mnist").iterdir()) == sorted(files)


def test_fashion_mnist_rejects_files_that_do_not_match_the_published_checksums(cache, serve):
    files = _fashion_files(np.random.default_rng(0))
    server = serve({f"/{name}": body for name, body in files.items()})
    with pytest.raises(DatasetError, match="corrupt or truncated: md5 .* expected md5:"):
        load_dataset("fashion-mnist", base_url=server.url)  # default: the published checksums
    assert not any((cache / "fashion-mnist").glob("*.gz"))


def test_a_corrupt_idx_file_is_reported(tmp_path):
    good = _idx(np.zeros((4, 28, 28)))
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(gzip.decompress(good)[:-100]))
    with pytest.raises(DatasetError, match=r"corrupt or truncated: its header announces shape \(4, 28, 28\)"):
        read_idx("fashion-mnist", short)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        read_idx("fashion-mnist", cut)
    text = tmp_path / "text.gz"
    text.write_bytes(gzip.compress(b"hello world, not an idx file"))
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx("fashion-mnist", text)


def test_the_shipped_tables_load_offline_into_an_empty_cache(cache, monkeypatch):
    """A fresh machine with no cache and no network: red wine, cereals and California
    housing come from the copies shipped in the package, verified like downloads."""
    from zoo.datasets import tabular

    def no_network(*args, **kwargs):
        raise AssertionError("a shipped dataset must not be downloaded")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    rows = {"red-wine": 1599, "cereals": 74, "california-housing": 20433}
    published = {"red-wine": tabular.RED_WINE_SHA256, "cereals": tabular.CEREALS_SHA256,
                 "california-housing": tabular.HOUSING_SHA256}
    for name, expected in rows.items():
        data = load_dataset(name)
        assert sum(data.split["rows"].values()) == expected, name
        assert data.checksum == f"sha256:{published[name]}", name
    assert sorted(p.name for p in cache.iterdir()) == ["housing.csv"]  # only the compressed one is written out


def test_a_user_file_or_url_still_wins_over_the_shipped_copy(cache, serve, tmp_path):
    """The Kaggle re-upload (commas, unquoted header): same rows, other bytes, so the
    checksum says which file was read."""
    wine = (REFERENCE / "winequality-red.csv").read_bytes()
    kaggle = wine.replace(b";", b",").replace(b'"', b"")
    (tmp_path / "wine.csv").write_bytes(kaggle)
    digest = "sha256:" + hashlib.sha256(kaggle).hexdigest()
    assert load_dataset("red-wine", path=str(tmp_path / "wine.csv")).checksum == digest
    server = serve({"/wine.csv": kaggle})
    assert load_dataset("red-wine", url=f"{server.url}/wine.csv").checksum == digest
    assert server.requests == ["/wine.csv"]
