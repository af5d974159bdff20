"""ModelTarget: one type that the client writes and the server reads, checked across the wire."""

from __future__ import annotations

import dataclasses

import pytest
from tensorflow_serving.apis import model_pb2

from zoo.client.base import ClientError, model_target
from zoo.protocol.model_spec import ModelTarget
from zoo.server.frontends.rest_v1 import PREDICTION_PATH, STATUS_PATH, _target

TARGETS = [
    ModelTarget("wine"),
    ModelTarget("wine", version=3, signature_name="classify"),
    ModelTarget("wine", label="stable"),
    ModelTarget("a name/with slash", label="can ary"),  # escaped in the path, whole again on the server
]


@pytest.mark.parametrize("target", TARGETS)
def test_a_target_survives_a_grpc_model_spec(target):
    spec = model_pb2.ModelSpec()
    target.fill(spec)
    assert ModelTarget.from_proto(model_pb2.ModelSpec.FromString(spec.SerializeToString())) == target


@pytest.mark.parametrize("target", TARGETS)
def test_the_server_reads_back_the_rest_path_the_client_writes(target):
    name, version, label, verb = PREDICTION_PATH.fullmatch(target.rest_path(":predict")).groups()
    assert verb == "predict"
    assert _target(name, version, label) == dataclasses.replace(target, signature_name="")
    name, version, label, subresource = STATUS_PATH.fullmatch(target.rest_path("/metadata")).groups()
    assert subresource == "metadata" and _target(name, version, label).name == target.name


def test_status_requests_leave_the_signature_out():
    spec = model_pb2.ModelSpec()
    ModelTarget("wine", version=2, signature_name="classify").fill(spec, with_signature=False)
    assert spec.signature_name == "" and spec.version.value == 2


def test_a_response_names_the_version_that_served_and_the_signature_that_ran():
    spec = ModelTarget("wine", label="stable").served_by(7)
    assert (spec.name, spec.version.value, spec.signature_name) == ("wine", 7, "serving_default")
    assert spec.WhichOneof("version_choice") == "version"


def test_a_version_and_a_label_together_are_refused_on_both_sides():
    with pytest.raises(ValueError, match="give a version or a label, not both"):
        ModelTarget("wine", version=1, label="stable")
    with pytest.raises(ClientError, match="model 'wine': give a version or a label, not both"):
        model_target("wine", 1, "stable")
