"""The server under test: an embedded `zoo serve` on free ports, or any TF-Serving-API server.

By default a session fixture writes a model repository (half_plus_two, a slow model, every
registered zoo model exported untrained, and TF Serving's own test models: see
tfserving_models.py) with its models.config, and starts a `ZooServer` on it in this
process. With ZOO_TEST_REST=host:port and ZOO_TEST_GRPC=host:port the conformance tests
run against that server instead (the real TensorFlow Serving, say); the repository and its
models.config are then written to $ZOO_TEST_MODELS_DIR, and that server must serve that
models.config, mounted at the same path, with --allow_version_labels_for_unavailable_models
(the config labels a version at start). Tests that need to start or reconfigure a server of
their own are marked `embedded` and skipped there.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from tests.serving import tfserving_models
from tests.serving.testmodels import write_half_plus, write_slow
from tests.zoo_models import build, served

EXTERNAL = bool(os.environ.get("ZOO_TEST_REST") and os.environ.get("ZOO_TEST_GRPC"))


def pytest_collection_modifyitems(config, items):
    if EXTERNAL:
        skip = pytest.mark.skip(reason="needs the embedded server (ZOO_TEST_REST/GRPC point elsewhere)")
        for item in items:
            if "embedded" in item.keywords:
                item.add_marker(skip)


@dataclasses.dataclass
class ZooModel:
    """A zoo model as exported for the server, and what it must answer."""

    name: str
    info: object
    data: object
    model: object
    input_names: list[str]

    @property
    def task(self) -> str:
        return self.info.task

    def rows(self, count=5):
        return {name: self.data.test.features[name][:count] for name in self.input_names}

    def expected(self, count=5) -> dict[str, np.ndarray]:
        """The served numeric outputs (prediction, probabilities...) model.predict gives."""
        return served(self.info, self.model.predict(self.rows(count), verbose=0))


# TF Serving's test models in the session repository: served name -> testdata folder.
# "default" is saved_model_half_plus_two_cpu, the name TF Serving's own tests serve it by.
TFSERVING_MODELS = {
    "default": "saved_model_half_plus_two_cpu",
    "saved_model_half_plus_two_2_versions": "saved_model_half_plus_two_2_versions",
    "half_plus_three": "saved_model_half_plus_three",
    "half_plus_two_tf2": "saved_model_half_plus_two_tf2_cpu",
    "counter": "saved_model_counter",
}
# As TF Serving's REST handler test configures saved_model_half_plus_two_2_versions.
TWO_VERSIONS_LABEL = "Version_Label"


@dataclasses.dataclass
class Repository:
    root: Path
    zoo_models: dict[str, ZooModel]
    config_file: Path


@pytest.fixture(scope="session")
def repository(tmp_path_factory, load) -> Repository:
    from zoo.registry import list_models
    from zoo.repository.export import export_model
    from zoo.training.trainer import input_names

    root = Path(os.environ.get("ZOO_TEST_MODELS_DIR") or tmp_path_factory.mktemp("served-models"))
    (root / "half_plus_two").mkdir(parents=True, exist_ok=True)
    write_half_plus(root / "half_plus_two" / "1", 2.0)
    (root / "slow").mkdir(exist_ok=True)
    write_slow(root / "slow" / "1")
    for name, testdata in TFSERVING_MODELS.items():
        if not (root / name).exists():
            tfserving_models.provide(testdata, root / name)
    zoo_models = {}
    for name in list_models():
        info, data, model = build(name, load)
        inputs = input_names(model)
        export_model(
            model, name=name, task=info.task, class_names=data.class_names, models_dir=root,
            card={"task": info.task}, warmup_rows={k: data.test.features[k][:4] for k in inputs},
        )
        zoo_models[name] = ZooModel(name, info, data, model, inputs)
    config_file = write_config(root, ["half_plus_two", "slow", *TFSERVING_MODELS, *zoo_models])
    return Repository(root, zoo_models, config_file)


@dataclasses.dataclass
class Server:
    rest_address: str
    grpc_address: str
    embedded: object = None  # the ZooServer, when the tests started it

    def rest(self, method: str, path: str, body=None, raw: bytes | None = None, timeout=60):
        """(status, parsed JSON or text) for one HTTP request."""
        host, port = self.rest_address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read().decode()
        connection.close()
        try:
            return response.status, json.loads(text)
        except json.JSONDecodeError:
            return response.status, text


@pytest.fixture(scope="session")
def server(repository):
    if EXTERNAL:
        yield Server(os.environ["ZOO_TEST_REST"], os.environ["ZOO_TEST_GRPC"])
        return
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file
    from zoo.server.plane.manager import LoadOptions

    embedded = ZooServer(
        load_model_config_file(repository.config_file), config_dir=repository.root, grpc_port=0, rest_port=0,
        poll_seconds=0.2, metrics_path="/monitoring/prometheus/metrics", rest_timeout_ms=0,
        max_body_bytes=1 << 20, load_options=LoadOptions(allow_unavailable_labels=True),
    ).start()
    yield Server(f"127.0.0.1:{embedded.rest_port}", f"127.0.0.1:{embedded.grpc_port}", embedded)
    embedded.stop()


def write_config(root: Path, names, path: Path | None = None) -> Path:
    """A models.config serving `names` from `root/<name>` (written to root/models.config).

    saved_model_half_plus_two_2_versions, if named, is served as TF Serving's REST handler
    test serves it: version 123 only, labelled Version_Label.
    """
    from google.protobuf import text_format

    from zoo.server.config import load_model_config_file, write_model_config_file

    path = write_model_config_file(path or root / "models.config", {name: root / name for name in names})
    config = load_model_config_file(path)
    for entry in config.model_config_list.config:
        if entry.name == "saved_model_half_plus_two_2_versions":
            entry.model_version_policy.specific.versions.append(123)
            entry.version_labels[TWO_VERSIONS_LABEL] = 123
    path.write_text(text_format.MessageToString(config), encoding="utf-8")
    return path


@pytest.fixture()
def start(repository, tmp_path):
    """start(names, **ZooServer options) -> Server over the session's model repository."""
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file

    servers = []

    def starter(names, **options):
        config_file = write_config(repository.root, names, path=tmp_path / "models.config")
        options = {"grpc_port": 0, "rest_port": 0, "poll_seconds": 0, **options}
        embedded = ZooServer(load_model_config_file(config_file), **options).start()
        servers.append(embedded)
        return Server(f"127.0.0.1:{embedded.rest_port}", f"127.0.0.1:{embedded.grpc_port}", embedded)

    yield starter
    for embedded in servers:
        embedded.stop()


@pytest.fixture(scope="session")
def channel(server):
    with grpc.insecure_channel(server.grpc_address) as channel:
        yield channel


@pytest.fixture(scope="session")
def prediction_stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="session")
def model_stub(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)
