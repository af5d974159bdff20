"""What the REST and gRPC clients share: one interface, and DataFrames in and out.

A client knows only the signature contract: the model's name, a signature name, and the
signature's input and output keys and dtypes (read once from the server's metadata). It
never needs Keras. Features go in as a DataFrame (or a dict of columns); predictions come
back as a DataFrame with one column per output, and one column per element for outputs
with more than one value a row (`probabilities_0`, `probabilities_1`...).
"""

from __future__ import annotations

import abc
import dataclasses
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoo.errors import ZooError
from zoo.protocol.model_spec import ModelTarget
from zoo.protocol.names import CLASSIFY_SIGNATURE, DEFAULT_SIGNATURE, REGRESS_SIGNATURE


class ClientError(ZooError):
    """A request the client could not make or the server refused, said in one line."""


class Unavailable(ClientError):
    """The server could not be reached or said UNAVAILABLE: the one error worth retrying."""


@dataclasses.dataclass(frozen=True)
class SignatureTensor:
    """One signature input or output: its dtype and shape, as the server describes it (read
    from TensorFlow's TensorInfo proto, whose name this class leaves to it)."""
    dtype: str  # TF's enum name: "DT_FLOAT", "DT_STRING"...
    shape: tuple[int, ...] | None  # -1 for any size; None for unknown rank


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
    """A signature's inputs and outputs by name."""
    name: str
    method_name: str
    inputs: dict[str, SignatureTensor]
    outputs: dict[str, SignatureTensor]

    @classmethod
    def from_proto(cls, name: str, definition) -> SignatureInfo:
        """From a SignatureDef proto (gRPC metadata, or a SavedModel's own)."""
        from tensorflow.core.framework import types_pb2

        def tensors(entries) -> dict[str, SignatureTensor]:
            return {
                key: SignatureTensor(
                    types_pb2.DataType.Name(info.dtype),
                    None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim),
                )
                for key, info in entries.items()
            }

        return cls(name, definition.method_name, tensors(definition.inputs), tensors(definition.outputs))


def model_target(name: str, version: int | None = None, label: str | None = None,
                 signature: str = DEFAULT_SIGNATURE) -> ModelTarget:
    """The target of a call; a version and a label together are a ClientError."""
    try:
        return ModelTarget(name, version, label, signature)
    except ValueError as error:
        raise ClientError(str(error)) from None


@dataclasses.dataclass(frozen=True)
class ClientTls:
    """TLS for a client: the CA that signed the server's certificate (None: the system's
    CAs), and for mutual TLS the client's certificate chain and key (PEM files)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def from_args(cls, args) -> ClientTls | None:
        """From zoo predict's --ca-file, --client-cert and --client-key; None without them."""
        if not (args.ca_file or args.client_cert or args.client_key):
            return None
        return cls(args.ca_file, args.client_cert, args.client_key)

    def __post_init__(self):
        if bool(self.cert_file) != bool(self.key_file):
            raise ClientError("a client certificate needs its key, and a key its certificate")

    def pem(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        """(CA, client key, client certificate) as PEM bytes, as gRPC's credentials take them."""
        def read(path):
            try:
                return Path(path).read_bytes() if path else None
            except OSError as error:
                raise ClientError(f"TLS: cannot read {path}: {error.strerror or error}") from None

        return read(self.ca_file), read(self.key_file), read(self.cert_file)

    def ssl_context(self) -> ssl.SSLContext:
        """An SSLContext that verifies the server (and presents the client certificate)."""
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as error:
            raise ClientError(f"TLS: {error}") from None
        return context


class ModelClient(abc.ABC):
    """The interface both clients implement."""

    def __init__(self, address: str, *, timeout: float = 30.0, retries: int = 3, backoff: float = 0.2,
                 tls: ClientTls | None = None):
        self.address = address
        self.tls = tls
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._signatures: dict[tuple, dict[str, SignatureInfo]] = {}

    # -- the public calls ------------------------------------------------------------------

    def predict(self, model: str, features, *, version: int | None = None, label: str | None = None,
                signature: str = DEFAULT_SIGNATURE) -> pd.DataFrame:
        """Predictions for each row of `features` (a DataFrame or a dict of columns)."""
        ref = model_target(model, version, label, signature)
        info = self.signature(ref)
        columns = feature_columns(features, info)
        outputs = self._call(lambda: self._predict(ref, info, columns))
        return outputs_frame(outputs, index=_index(features))

    def classify(self, model: str, features, *, version: int | None = None, label: str | None = None,
                 signature: str = CLASSIFY_SIGNATURE) -> pd.DataFrame:
        """Classify API: a score column per class label, and `label`, the best one."""
        ref = model_target(model, version, label, signature)
        rows = example_rows(features)
        results = self._call(lambda: self._classify(ref, rows))
        frame = pd.DataFrame([{lbl: score for lbl, score in row} for row in results], index=_index(features))
        frame["label"] = frame.idxmax(axis=1)
        return frame

    def regress(self, model: str, features, *, version: int | None = None, label: str | None = None,
                signature: str = REGRESS_SIGNATURE) -> pd.DataFrame:
        """Regress API: one `value` column."""
        ref = model_target(model, version, label, signature)
        rows = example_rows(features)
        values = self._call(lambda: self._regress(ref, rows))
        return pd.DataFrame({"value": values}, index=_index(features))

    def status(self, model: str, *, version: int | None = None, label: str | None = None) -> pd.DataFrame:
        """A row per version: version, state, error_code, error_message."""
        return pd.DataFrame(self._call(lambda: self._status(model_target(model, version, label))))

    def signature(self, ref: ModelTarget) -> SignatureInfo:
        """The named signature's inputs and outputs, from the server's metadata (cached)."""
        key = (ref.name, ref.version, ref.label)
        if key not in self._signatures:
            self._signatures[key] = self._call(lambda: self._metadata(ref))
        signatures = self._signatures[key]
        if ref.signature not in signatures:
            raise ClientError(
                f"model '{ref.name}' on {self.address} has no signature '{ref.signature}'; "
                f"it has: {', '.join(sorted(signatures))}"
            )
        return signatures[ref.signature]

    def close(self) -> None:  # noqa: B027  (a hook: a client without connections keeps it)
        """Release connections."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- what a transport implements -------------------------------------------------------

    @abc.abstractmethod
    def _predict(self, ref: ModelTarget, info: SignatureInfo,
                 columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def _classify(self, ref: ModelTarget, rows: list[dict]) -> list[list[tuple[str, float]]]: ...

    @abc.abstractmethod
    def _regress(self, ref: ModelTarget, rows: list[dict]) -> list[float]: ...

    @abc.abstractmethod
    def _status(self, ref: ModelTarget) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def _metadata(self, ref: ModelTarget) -> dict[str, SignatureInfo]: ...

    # -- retries ---------------------------------------------------------------------------

    def _call(self, attempt: Callable[[], Any]) -> Any:
        """Run `attempt`, retrying (with exponential backoff) only when unavailable.

        Kept by hand for gRPC too, measured: gRPC's own retryPolicy (service config) caps
        attempts at 5 and draws each wait at random below the backoff, and a call made while
        the channel waits out its reconnect backoff fails at once; with the same `retries=8,
        backoff=0.1` it gave up on a server that came up after one second, which this loop
        reaches (tests/client/test_clients.py)."""
        for tries in range(self.retries + 1):
            try:
                return attempt()
            except Unavailable as error:
                if tries == self.retries:
                    raise Unavailable(f"{error} (after {tries + 1} attempts)") from None
                time.sleep(self.backoff * 2**tries)
        raise AssertionError("unreachable")


def feature_columns(features, info: SignatureInfo) -> dict[str, np.ndarray]:
    """The signature's inputs as arrays, checked: a missing column or a cell that is not of
    the input's type is a ClientError naming the column and the row."""
    frame = features if isinstance(features, pd.DataFrame) else _frame(features)
    missing = [name for name in info.inputs if name not in frame.columns]
    if missing:
        raise ClientError(
            f"missing feature column(s) {', '.join(missing)}; the model takes: "
            f"{', '.join(info.inputs)}; got: {', '.join(map(str, frame.columns))}"
        )
    columns = {}
    for name, tensor in info.inputs.items():
        series = frame[name]
        if tensor.dtype == "DT_STRING":
            columns[name] = series.astype(str).to_numpy(dtype=object)
            continue
        # An image, a row per cell: a list in every cell of an object column. Only the first
        # cell is looked at (scanning every cell of every column cost half of `zoo predict`'s
        # time); a list further down fails below as "expected a number", which says it.
        if series.dtype == object and len(series) and _is_list(series.iloc[0]):
            columns[name] = _stack_cells(series, name)
            continue
        numbers = pd.to_numeric(series, errors="coerce").to_numpy()
        bad = ~np.isfinite(numbers)  # also 1e400 and inf: a model answers them with NaN or nonsense
        if bad.any():
            first = bad.nonzero()[0][0]
            row = series.index[first]
            value = series.loc[row]
            empty = value is None or (isinstance(value, float) and np.isnan(value)) or value == ""
            what = "an empty cell" if empty else repr(value)
            kind = "a finite number" if np.isinf(numbers[first]) else "a number"
            raise ClientError(f"row {row}, column '{name}': expected {kind}, got {what}")
        columns[name] = numbers
    return columns


def _stack_cells(series: pd.Series, name: str) -> np.ndarray:
    """An image column (a nested list per cell) as one array; a bad cell names its row."""
    cells = []
    for row, cell in series.items():
        try:
            array = np.asarray(cell, dtype=np.float64)
        except (TypeError, ValueError):
            raise ClientError(f"row {row}, column '{name}': expected a list of numbers, got {str(cell)[:80]}") from None
        if cells and array.shape != cells[0].shape:
            raise ClientError(f"row {row}, column '{name}': expected shape {list(cells[0].shape)} like "
                              f"the rows before it, got {list(array.shape)}")
        cells.append(array)
    return np.stack(cells)


def example_rows(features) -> list[dict]:
    """Rows as plain dicts for Classify/Regress examples (floats stay floats)."""
    frame = features if isinstance(features, pd.DataFrame) else _frame(features)
    rows = []
    for record in frame.to_dict(orient="records"):
        rows.append({k: (float(v) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else v)
                     for k, v in record.items()})
    return rows


def outputs_frame(outputs: dict[str, np.ndarray], index=None) -> pd.DataFrame:
    """A DataFrame of outputs: vectors become `name_0..name_k`, bytes become text."""
    columns = {}
    for name in sorted(outputs):
        value = np.asarray(outputs[name])
        if value.dtype.kind in "OS":
            value = np.vectorize(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v,
                                 otypes=[object])(value)
        if value.ndim <= 1:
            columns[name] = value
        else:
            flat = value.reshape(len(value), -1)
            for position in range(flat.shape[1]):
                columns[f"{name}_{position}"] = flat[:, position]
    return pd.DataFrame(columns, index=index)


def _frame(features: Mapping) -> pd.DataFrame:
    if not isinstance(features, Mapping):
        raise ClientError(f"features must be a DataFrame or a dict of columns, got {type(features).__name__}")
    columns = {k: (list(v) if isinstance(v, np.ndarray) and v.ndim > 1 else v) for k, v in features.items()}
    return pd.DataFrame(columns)


def _index(features):
    return features.index if isinstance(features, pd.DataFrame) else None


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))
