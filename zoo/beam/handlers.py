"""Beam model handlers for the zoo's exported models: in-process, or a served model.

Both take a batch of feature dicts (one per row, as `rows.ReadRows` yields them) and return
one dict of named outputs per row, so the rest of the pipeline does not care which ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RemoteModelHandler

from zoo.client.base import ClientError, SignatureInfo, Unavailable, outputs_frame
from zoo.protocol.model_spec import ModelTarget
from zoo.protocol.names import SERVE_TAG


def _columns(batch: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """A batch of chunks (each a dict of columns) as one dict of columns."""
    return {name: np.concatenate([chunk[name] for chunk in batch]) for name in batch[0]}


def _results(batch: Sequence[dict[str, np.ndarray]], frame: pd.DataFrame, model_id: str) -> list[PredictionResult]:
    """A PredictionResult per chunk; its inference the chunk's rows of `frame`, which has the
    columns `zoo predict` writes (vectors as name_0..name_k)."""
    sizes = [len(next(iter(chunk.values()))) for chunk in batch]
    if len(frame) != sum(sizes):
        raise ClientError(f"the model answered {len(frame)} rows for a batch of {sum(sizes)}")
    ends = np.cumsum(sizes)
    return [PredictionResult(chunk, frame.iloc[end - size:end].reset_index(drop=True), model_id)
            for chunk, size, end in zip(batch, sizes, ends)]


class SavedModelHandler(ModelHandler):
    """Loads a version folder in each worker, as `zoo serve` loads it (a TF1 session over the
    SavedModel, TF Serving's loader), and calls its signature on each batch in-process.

    An element is a chunk of rows as columns (see `zoo.beam.rows`); a batch, a few chunks.

    Args:
        version_dir: models/<name>/<version> (any path Beam's workers can read).
        signature_name: the signature to run ("": serving_default).
        max_batch_size: the most chunks Beam hands it at once.
    """

    def __init__(self, version_dir: str, signature_name: str = "", max_batch_size: int = 1):
        super().__init__()
        self.version_dir = str(version_dir)
        self.target = ModelTarget(Path(self.version_dir).parent.name, int(Path(self.version_dir).name),
                                  signature_name=signature_name)
        self.max_batch_size = max_batch_size

    def load_model(self):
        """The version, loaded (once per worker process; Beam shares it between threads)."""
        from zoo.server.plane.servable import Servable

        return Servable(self.target.name, self.target.version, Path(self.version_dir))

    def signature(self) -> SignatureInfo:
        """The signature, read from saved_model.pb without loading the variables."""
        from tensorflow.core.protobuf import saved_model_pb2

        saved = saved_model_pb2.SavedModel.FromString((Path(self.version_dir) / "saved_model.pb").read_bytes())
        # The graph `load_model` loads: the one tagged "serve" (a SavedModel may hold others).
        served = [graph for graph in saved.meta_graphs if list(graph.meta_info_def.tags) == [SERVE_TAG]]
        if not served:
            raise ClientError(f"{self.version_dir} has no meta graph tagged '{SERVE_TAG}'")
        definitions = served[0].signature_def
        if self.target.signature not in definitions:
            raise ClientError(f"{self.version_dir} has no signature '{self.target.signature}'; "
                              f"it has: {', '.join(sorted(definitions))}")
        return SignatureInfo.from_proto(self.target.signature, definitions[self.target.signature])

    def run_inference(self, batch, model, inference_args=None):
        """The batch's outputs, one dict per row."""
        _, outputs = model.predict(self.target.signature, _columns(batch))
        return _results(batch, outputs_frame(outputs), self.version_dir)

    def batch_elements_kwargs(self):
        """Batches of up to `max_batch_size` chunks."""
        return {"min_batch_size": 1, "max_batch_size": self.max_batch_size}

    def get_metrics_namespace(self) -> str:
        """Beam's metrics for this handler go under zoo_savedmodel."""
        return "zoo_savedmodel"


class ServedModelHandler(RemoteModelHandler):
    """Calls a model that `zoo serve` or TF Serving serves, through the zoo's REST or gRPC
    client. Beam retries a batch that ended UNAVAILABLE / 503 (with exponential backoff)
    and throttles the client when the server refuses more than it serves; any other error
    fails the batch at once, and its rows go to the dead letters.

    Args:
        address: "host:port" of the server's REST or gRPC API.
        model: the model's name; version or label, and signature, as `zoo predict` takes them.
        via: "grpc" or "rest".
        protocol: "v1" (TF Serving's API) or "v2" (the Open Inference Protocol).
        max_batch_size: the most chunks in one request (a chunk is up to --batch-size rows).
        timeout: seconds per request.
        num_retries: Beam's retries of an unavailable batch.
        tls: a zoo.client.ClientTls for a server with TLS; None for plaintext.
    """

    def __init__(self, address: str, model: str, *, via: str = "grpc", protocol: str = "v1",
                 version: int | None = None,
                 label: str | None = None, signature_name: str = "", max_batch_size: int = 1,
                 timeout: float = 60.0, num_retries: int = 5, throttle_delay_secs: int = 1, tls=None):
        super().__init__(namespace="zoo_served", num_retries=num_retries, throttle_delay_secs=throttle_delay_secs,
                         retry_filter=lambda error: isinstance(error, Unavailable))
        if via not in ("grpc", "rest"):
            raise ClientError(f"via must be grpc or rest, got '{via}'")
        if protocol not in ("v1", "v2"):
            raise ClientError(f"protocol must be v1 or v2, got '{protocol}'")
        self.address, self.via, self.max_batch_size, self.timeout = address, via, max_batch_size, timeout
        self.protocol = protocol
        self.tls = tls  # a zoo.client.ClientTls (files are read by each worker)
        self.target = ModelTarget(model, version, label, signature_name)

    def create_client(self):
        """One client per worker; Beam retries, so the client itself does not."""
        from zoo.client import client_class

        return client_class(self.via, self.protocol)(self.address, timeout=self.timeout, retries=0, tls=self.tls)

    def signature(self) -> SignatureInfo:
        """The served signature, from the server's metadata."""
        client = self.create_client()
        try:
            return client.signature(self.target)
        finally:
            client.close()

    def request(self, batch, model, inference_args=None):
        """One Predict call for the batch; its outputs, one dict per row."""
        target = self.target
        frame = model.predict(target.name, _columns(batch), version=target.version, label=target.label,
                              signature=target.signature)
        return _results(batch, frame, f"{self.address}/{target.name}")

    def batch_elements_kwargs(self):
        """Batches of up to `max_batch_size` chunks."""
        return {"min_batch_size": 1, "max_batch_size": self.max_batch_size}
