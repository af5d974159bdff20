"""`zoo demo`: the main job of the quick start. Train and export the demo models, say where
they went and how they scored, then serve them with `zoo serve`'s server and show one REST
and one gRPC prediction made against it (`--serve` keeps the server up afterwards).

The offline models (digits, synthetic coffee roasts) always run. The models on downloaded
data run when their file is in the cache or can be downloaded, and are skipped with the
reason otherwise, so the demo works on a machine with no network.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from zoo.config import TrainConfig
from zoo.errors import DatasetError

# (model, overrides): short runs that still reach sensible numbers. The coffee network's
# registered Adam 0.01 is the course's, tuned for 200,000 tiled rows; on our 700 rows a
# larger step reaches the same accuracy in a fraction of the epochs.
DEMO_RUNS = (
    ("digits-mlp", {}),
    ("binary-classifier", {"epochs": 80, "learning_rate": 0.05}),
    ("dnn-regressor", {}),
    ("linear-unit", {}),
)

# The model whose predictions the demo shows over REST and gRPC: the first one trained.
SERVED_EXAMPLES = ("dnn-regressor", "binary-classifier", "digits-mlp")


@dataclasses.dataclass(frozen=True)
class DemoRow:
    model: str
    dataset: str
    version_dir: str
    metrics: str


def run_demo(models_dir: Path, keep_serving: bool = False) -> int:
    from zoo.datasets import data_dir
    from zoo.train import train

    print(f"dataset cache: {data_dir()}   model repository: {models_dir}")
    rows, skipped = [], []
    for model, overrides in DEMO_RUNS:
        config = TrainConfig(model=model, models_dir=str(models_dir), **overrides)
        print(f"training {model} ...", end=" ", flush=True)
        try:
            result = train(config, verbose=0)
        except DatasetError as error:
            skipped.append((model, str(error)))
            print("skipped")
            continue
        print(f"{result.metrics['epochs_run']} epochs in {result.metrics['train_seconds']:.1f}s")
        test = ", ".join(f"{key} {value:.4f}" for key, value in result.metrics["test"].items())
        rows.append(DemoRow(model, result.config.dataset, str(result.version_dir), test))

    print("\n== exported versions (test-split metrics)")
    for row in rows:
        print(f"{row.model:<18} {row.dataset:<16} {row.version_dir:<28} {row.metrics}")
    for model, reason in skipped:
        print(f"{model:<18} skipped: {reason}")
    print(f"\nTF Serving config: {models_dir / 'models.config'}")
    if not rows:
        return 1
    trained = [row.model for row in rows]
    example = next((m for m in SERVED_EXAMPLES if m in trained), trained[0])
    show_serving(models_dir, example, keep_serving)
    return 0


def show_serving(models_dir: Path, model: str, keep_serving: bool) -> None:
    """Serve the repository and predict a few test rows of `model` over REST and gRPC."""
    import json
    import threading
    import urllib.request

    import grpc
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from zoo import model_card, repository
    from zoo.evaluate import dataset_from_card
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file
    from zoo.server.rest_json import tensor_json

    config_file = models_dir / "models.config"
    ports = (8500, 8501) if keep_serving else (0, 0)  # a demo run takes any free ports
    server = ZooServer(load_model_config_file(config_file), config_dir=models_dir.resolve(),
                       grpc_port=ports[0], rest_port=ports[1]).start()
    rest = f"http://{server.host}:{server.rest_port}"
    print(f"\n== serving {config_file}: gRPC {server.host}:{server.grpc_port}, REST {rest}")
    card = model_card.read(repository.version_dir(models_dir, model))
    inputs = list(card["signature"]["inputs"])
    test = dataset_from_card(card).test
    # tensor_json writes float32 values as short as they read back (9.3, not 9.300000190734863)
    rows = [{k: json.loads(tensor_json(np.asarray(test.features[k][i]))) for k in inputs} for i in range(2)]
    body = json.dumps({"instances": rows}).encode()
    request = urllib.request.Request(f"{rest}/v1/models/{model}:predict", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = response.read().decode()
    shown = body.decode() if len(body) < 300 else body.decode()[:297] + "..."
    print(f"REST  POST /v1/models/{model}:predict {shown}\n      -> {' '.join(answer.split())}")

    grpc_request = predict_pb2.PredictRequest()
    grpc_request.model_spec.name = model
    for key in inputs:
        grpc_request.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(test.features[key][:2], np.float32)))
    with grpc.insecure_channel(f"{server.host}:{server.grpc_port}") as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(grpc_request, timeout=60)
    outputs = {k: _readable(tf.make_ndarray(v)) for k, v in sorted(reply.outputs.items())}
    print(f"gRPC  PredictionService.Predict {model} v{reply.model_spec.version.value} -> {outputs}")
    if keep_serving:
        print("serving until Ctrl-C")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    server.stop()


def _readable(array):
    if array.dtype.kind == "f":
        return [float(f"{value:.6g}") for value in array.ravel()] if array.ndim == 1 else array.round(6).tolist()
    if array.dtype.kind == "O":
        return [value.decode() if isinstance(value, bytes) else value for value in array.tolist()]
    return array.tolist()
