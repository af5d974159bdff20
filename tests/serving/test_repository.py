"""The model repository while serving: rollouts, failed versions, policies, labels, reloads.

Each test starts its own embedded server on its own folder, since it changes that folder.
"""

from __future__ import annotations

import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from tests.serving.conftest import Server, write_config
from tests.serving.testmodels import write_half_plus

pytestmark = pytest.mark.embedded


@pytest.fixture()
def start(tmp_path):
    """start(config_text=None, **options) -> Server on tmp_path/models; stopped afterwards."""
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file

    servers = []

    def starter(names=("half_plus_two",), **options):
        config_file = write_config(tmp_path / "models", names)
        options = {"grpc_port": 0, "rest_port": 0, "poll_seconds": 0.1, **options}
        embedded = ZooServer(load_model_config_file(config_file), config_dir=config_file.parent, **options).start()
        servers.append(embedded)
        return Server(f"127.0.0.1:{embedded.rest_port}", f"127.0.0.1:{embedded.grpc_port}", embedded)

    (tmp_path / "models" / "half_plus_two").mkdir(parents=True)
    yield starter
    for embedded in servers:
        embedded.stop()


def _versions(tmp_path):
    return tmp_path / "models" / "half_plus_two"


def _replace_file(path, text):
    """Write as an operator's tooling should (and as the zoo's exports do): a whole new file
    renamed over the old, so a poll never reads a half-written or empty config. A plain
    truncate-and-write made this module's config-polling test fail once in CI."""
    scratch = path.with_name(f".{path.name}.new")
    scratch.write_text(text)
    scratch.replace(path)


def _wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _states(server, name="half_plus_two"):
    status, body = server.rest("GET", f"/v1/models/{name}")
    return {} if status != 200 else {int(v["version"]): v["state"] for v in body["model_version_status"]}


def test_a_rollout_under_load_fails_no_request_and_switches_versions(start, tmp_path):
    write_half_plus(_versions(tmp_path) / "1", 2.0)
    server = start()
    answers, failures, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            status, body = server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [2.0]})
            (answers if status == 200 else failures).append(body)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert _wait_for(lambda: len(answers) > 20)
    write_half_plus(_versions(tmp_path) / "2", 3.0)  # half_plus_three, as a new version
    assert _wait_for(lambda: answers and answers[-1] == {"predictions": [4.0]})
    count = len(answers)
    assert _wait_for(lambda: len(answers) > count + 20)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    seen = [body["predictions"][0] for body in answers]
    assert seen[0] == 3.0 and seen[-1] == 4.0 and set(seen) == {3.0, 4.0}
    switch = seen.index(4.0)
    assert seen[switch:].count(3.0) <= 3  # only requests already in flight answer from v1
    assert _wait_for(lambda: _states(server) == {2: "AVAILABLE", 1: "END"})


def test_a_version_that_fails_to_load_is_reported_and_the_previous_keeps_serving(start, tmp_path):
    write_half_plus(_versions(tmp_path) / "1", 2.0)
    server = start()
    broken = _versions(tmp_path) / "2"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    assert _wait_for(lambda: 2 in _states(server))
    status, body = server.rest("GET", "/v1/models/half_plus_two/versions/2")
    (version,) = body["model_version_status"]
    assert version["state"] == "END" and version["status"]["error_code"] != "OK"
    assert version["status"]["error_message"]
    assert server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [2.0]}) == (200, {"predictions": [3.0]})
    assert _states(server)[1] == "AVAILABLE"


def test_version_policies_and_labels(start, tmp_path):
    for version, offset in ((1, 2.0), (2, 3.0), (3, 4.0)):
        write_half_plus(_versions(tmp_path) / str(version), offset)
    config = model_server_config_pb2.ModelServerConfig()
    entry = config.model_config_list.config.add(name="half_plus_two", base_path=str(_versions(tmp_path)), model_platform="tensorflow")
    text_format.Parse("model_version_policy { specific { versions: 1 versions: 3 } }", entry)
    (tmp_path / "models").mkdir(exist_ok=True)
    server = start(names=())
    channel = grpc.insecure_channel(server.grpc_address)
    stub = model_service_pb2_grpc.ModelServiceStub(channel)

    def reload():
        return stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config), timeout=60)

    reload()
    assert _states(server) == {1: "AVAILABLE", 3: "AVAILABLE"}
    # As TF Serving's ServerCore: a label may only point at a version that is loaded.
    entry.version_labels["stable"] = 2
    with pytest.raises(grpc.RpcError) as error:
        reload()
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.value.details() == ("Request to assign label to version 2 of model half_plus_two, "
                                     "which is not currently available for inference")
    assert server.rest("POST", "/v1/models/half_plus_two/labels/stable:predict", {"instances": [2.0]})[0] == 400
    entry.version_labels["stable"] = 1
    entry.version_labels["canary"] = 3
    reload()

    def predict(path):
        return server.rest("POST", f"/v1/models/half_plus_two{path}:predict", {"instances": [2.0]})[1]

    assert predict("") == {"predictions": [5.0]}  # the latest available version: 3
    assert predict("/labels/stable") == {"predictions": [3.0]}
    assert predict("/labels/canary") == {"predictions": [5.0]}
    assert predict("/versions/1") == {"predictions": [3.0]}
    assert server.rest("POST", "/v1/models/half_plus_two/versions/2:predict", {"instances": [2.0]})[0] == 404

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    request.model_spec.version_label = "stable"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    assert response.model_spec.version.value == 1
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [3.0]
    channel.close()


def test_labels_for_unavailable_versions_need_tf_servings_flag(start, tmp_path):
    """--allow_version_labels_for_unavailable_models: a new label may name a version that is
    not loaded (a config with labels can then be served from the start); an existing label
    still moves only to a loaded version."""
    from zoo.server.plane.errors import ServingError
    from zoo.server.plane.manager import LoadOptions

    for version in (1, 2):
        write_half_plus(_versions(tmp_path) / str(version), float(version))
    config = model_server_config_pb2.ModelServerConfig()
    entry = config.model_config_list.config.add(name="half_plus_two", base_path=str(_versions(tmp_path)),
                                                model_platform="tensorflow")
    entry.version_labels["stable"] = 1
    from zoo.server.app import ZooServer

    with pytest.raises(ServingError, match="Request to assign label to version 1 of model half_plus_two"):
        ZooServer(config, grpc_port=0, rest_port=None, poll_seconds=0)  # TF Serving refuses it at start too
    server = start(names=(), load_options=LoadOptions(allow_unavailable_labels=True))
    manager = server.embedded.manager
    text_format.Parse("model_version_policy { all {} }", entry)
    manager.reload(config)
    assert server.rest("POST", "/v1/models/half_plus_two/labels/stable:predict", {"instances": [2.0]}) == (
        200, {"predictions": [2.0]})
    entry.model_version_policy.specific.versions.append(2)  # version 1 is unloaded
    manager.reload(config)
    entry.version_labels["stable"] = 2
    manager.reload(config)
    entry.version_labels["stable"] = 1  # moving the label back to version 1 is refused, flag or not
    with pytest.raises(ServingError, match="version 1 of model half_plus_two, which is not currently available"):
        manager.reload(config)
    assert server.rest("POST", "/v1/models/half_plus_two/labels/stable:predict", {"instances": [2.0]}) == (
        200, {"predictions": [3.0]})


def test_latest_n_and_all_policies(start, tmp_path):
    for version in (1, 2, 3):
        write_half_plus(_versions(tmp_path) / str(version), float(version))
    server = start()
    assert _states(server) == {3: "AVAILABLE"}  # the default policy: latest 1
    from zoo.server.config import load_model_config_file

    config = load_model_config_file(write_config(tmp_path / "models", ["half_plus_two"]))
    policy = config.model_config_list.config[0].model_version_policy
    policy.latest.num_versions = 2
    server.embedded.manager.reload(config)
    assert _states(server) == {3: "AVAILABLE", 2: "AVAILABLE"}
    policy.all.SetInParent()
    server.embedded.manager.reload(config)
    assert _states(server) == {3: "AVAILABLE", 2: "AVAILABLE", 1: "AVAILABLE"}


def test_a_config_reload_adds_and_removes_models(start, tmp_path):
    write_half_plus(_versions(tmp_path) / "1", 2.0)
    other = tmp_path / "models" / "other"
    other.mkdir(parents=True)
    write_half_plus(other / "1", 10.0)
    server = start()
    assert server.rest("GET", "/v1/models/other")[0] == 404
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name="other", base_path=str(other), model_platform="tensorflow")
    with grpc.insecure_channel(server.grpc_address) as channel:
        response = model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
            model_management_pb2.ReloadConfigRequest(config=config), timeout=60
        )
    assert response.status.error_code == 0
    assert server.rest("POST", "/v1/models/other:predict", {"instances": [2.0]}) == (200, {"predictions": [11.0]})
    assert server.rest("GET", "/v1/models/half_plus_two")[0] == 404


def test_a_reload_asking_for_a_log_collector_zoo_serve_lacks_is_refused_by_name_and_the_config_stays(start, tmp_path):
    write_half_plus(_versions(tmp_path) / "1", 2.0)
    server = start()
    config = model_server_config_pb2.ModelServerConfig()
    entry = config.model_config_list.config.add(name="half_plus_two", base_path=str(_versions(tmp_path)),
                                                model_platform="tensorflow")
    entry.logging_config.sampling_config.sampling_rate = 1.0
    entry.logging_config.log_collector_config.type = "kafka"
    entry.logging_config.log_collector_config.filename_prefix = str(tmp_path / "logs")
    with grpc.insecure_channel(server.grpc_address) as channel, pytest.raises(grpc.RpcError) as refused:
        model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
            model_management_pb2.ReloadConfigRequest(config=config), timeout=60)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "log_collector_config.type 'kafka' is not a log collector zoo serve has (tfrecord)" in refused.value.details()
    assert server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [2.0]}) == (200, {"predictions": [3.0]})


def test_a_removed_newest_version_rolls_back_to_the_one_before(start, tmp_path):
    write_half_plus(_versions(tmp_path) / "1", 2.0)
    write_half_plus(_versions(tmp_path) / "2", 3.0)
    server = start()
    assert server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [2.0]})[1] == {"predictions": [4.0]}
    shutil.rmtree(_versions(tmp_path) / "2")
    assert _wait_for(lambda: server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [2.0]})[1]
                     == {"predictions": [3.0]})


def test_the_only_version_deleted_while_serving_is_unloaded_and_said_so(start, tmp_path, caplog):
    """TF Serving unloads a version that leaves the file system; the zoo kept it AVAILABLE."""
    write_half_plus(_versions(tmp_path) / "1", 2.0)
    server = start()
    assert _states(server) == {1: "AVAILABLE"}
    with caplog.at_level("WARNING", logger="zoo.server"):
        shutil.rmtree(_versions(tmp_path) / "1")
        assert _wait_for(lambda: _states(server) == {1: "END"})
    assert any("half_plus_two version 1 is gone from" in r.getMessage() and str(_versions(tmp_path)) in r.getMessage()
               for r in caplog.records)
    status, body = server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [2.0]})
    assert status == 404 and "Servable not found" in body["error"]


def test_a_base_path_replaced_by_a_file_is_named_once_and_serving_resumes_when_it_is_back(start, tmp_path, caplog):
    write_half_plus(_versions(tmp_path) / "1", 2.0)
    server = start()
    kept = tmp_path / "kept"
    with caplog.at_level("INFO", logger="zoo.server"):
        _versions(tmp_path).rename(kept)
        _versions(tmp_path).write_text("not a folder")
        assert _wait_for(lambda: _states(server) == {1: "END"})
        time.sleep(0.5)  # several polls: still one message
        faults = [r for r in caplog.records if "is not a directory" in r.getMessage()]
        assert len(faults) == 1 and faults[0].levelname == "ERROR" and str(_versions(tmp_path)) in faults[0].getMessage()
        _versions(tmp_path).unlink()
        kept.rename(_versions(tmp_path))
        assert _wait_for(lambda: _states(server) == {1: "AVAILABLE"})
    assert any("can be read again" in r.getMessage() for r in caplog.records)


# Root reads a mode-000 folder (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): as root, the probe runs in
# a child without those two capabilities (util-linux's setpriv), so the permission bits apply.
_UNREADABLE_PROBE = """
import json, logging, sys
from zoo.server.config import single_model_config
from zoo.server.plane.manager import LoadOptions, ModelManager
said = []
logging.getLogger("zoo.server").addHandler(type("H", (logging.Handler,), {"emit": lambda s, r: said.append(r.getMessage())})())
for base in sys.argv[1:]:
    manager = ModelManager(single_model_config("m", base), poll_seconds=0, options=LoadOptions(warmup=False))
    manager.poll_once()
    manager.stop()
print(json.dumps(said))
"""


def test_unreadable_version_folders_and_base_paths_are_named_as_unreadable(tmp_path):
    import json
    import os
    import subprocess
    import sys

    write_half_plus(tmp_path / "versions" / "1", 2.0)
    write_half_plus(tmp_path / "versions" / "2", 3.0)
    write_half_plus(tmp_path / "locked" / "1", 2.0)
    (tmp_path / "versions" / "2").chmod(0o000)
    (tmp_path / "locked").chmod(0o000)
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: a mode-000 folder is readable")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    try:
        child = subprocess.run(
            [*prefix, sys.executable, "-c", _UNREADABLE_PROBE, str(tmp_path / "versions"), str(tmp_path / "locked")],
            capture_output=True, text=True, timeout=120)
    finally:
        (tmp_path / "versions" / "2").chmod(0o755)  # so that pytest can clean up
        (tmp_path / "locked").chmod(0o755)
    assert child.returncode == 0, child.stderr[-2000:]
    said = "\n".join(json.loads(child.stdout.splitlines()[-1]))
    assert f"permission denied reading {tmp_path / 'versions' / '2'}" in said  # not "does not exist"
    assert f"cannot read the base path {tmp_path / 'locked'} of model m: permission denied" in said


def test_a_config_file_is_reread_when_asked_to_poll_it(start, tmp_path, caplog):
    write_half_plus(_versions(tmp_path) / "1", 2.0)
    write_half_plus(_versions(tmp_path) / "2", 3.0)
    config_file = tmp_path / "models" / "models.config"
    server = start(config_file=config_file, config_poll_seconds=0.1)
    assert server.rest("POST", "/v1/models/half_plus_two/labels/stable:predict", {"instances": [2.0]})[0] == 400
    from zoo.server.config import load_model_config_file

    config = load_model_config_file(config_file)
    entry = config.model_config_list.config[0]
    entry.model_version_policy.all.SetInParent()
    entry.version_labels["stable"] = 1
    # Version 1 is not loaded yet: TF Serving refuses the label, and so the whole file; the
    # old config keeps serving, and the file is tried again at later polls.
    _replace_file(config_file, text_format.MessageToString(config))
    assert _wait_for(lambda: "not currently available for inference" in caplog.text)
    time.sleep(0.5)
    assert caplog.text.count("not currently available for inference") == 1  # said once, not every poll
    assert _states(server) == {2: "AVAILABLE"}
    del entry.version_labels["stable"]
    _replace_file(config_file, text_format.MessageToString(config))
    assert _wait_for(lambda: _states(server) == {2: "AVAILABLE", 1: "AVAILABLE"})
    entry.version_labels["stable"] = 1
    _replace_file(config_file, text_format.MessageToString(config))
    assert _wait_for(lambda: server.rest("POST", "/v1/models/half_plus_two/labels/stable:predict",
                                         {"instances": [2.0]}) == (200, {"predictions": [3.0]}))


def test_a_version_folder_leading_outside_the_base_path_is_never_served(start, tmp_path):
    write_half_plus(_versions(tmp_path) / "1", 2.0)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    write_half_plus(outside / "9", 100.0)
    (_versions(tmp_path) / "9").symlink_to(outside / "9", target_is_directory=True)
    server = start()
    assert _states(server) == {1: "AVAILABLE"}
    assert server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [2.0]}) == (200, {"predictions": [3.0]})


def test_loaded_versions_are_frozen_out_of_the_collectors_walks_and_freed_when_dropped(tmp_path):
    """freeze_heap: a full collection walks no loaded model (the p90 of large REST requests
    was ~270 ms when it did), and a replaced version is still freed, not pinned."""
    import gc
    import weakref

    from zoo.server.config import single_model_config
    from zoo.server.plane.manager import ModelManager

    write_half_plus(_versions(tmp_path) / "1", 2.0)
    manager = ModelManager(single_model_config("half_plus_two", str(_versions(tmp_path))), poll_seconds=0)
    manager.start()
    loaded = manager.resolve("half_plus_two")
    assert gc.get_freeze_count() > 0
    assert not any(tracked is loaded for tracked in gc.get_objects())  # frozen: not in any generation
    dropped = weakref.ref(loaded)
    del loaded
    write_half_plus(_versions(tmp_path) / "2", 3.0)
    manager.poll_once()
    assert manager.resolve("half_plus_two").version == 2
    assert dropped() is None
    manager.stop()
