"""TensorFlow Serving's own test models, for the ported TF Serving test suite.

The originals are in ../shared/tfserving-testdata (copied from the tensorflow/serving
repository; see its SOURCES.md). They are what TF Serving's own tests serve, so where they
are present they are used as they are, zero-padded version folders included. Where they
are not (a clone on its own), the same models are built here the way TF Serving's
generator scripts build them (testdata/saved_model_half_plus_two.py, export_counter.py):
TF1 graphs written with `tf.compat.v1` and SavedModelBuilder (reference variables, the
Example-parsing signatures, a stateful counter), and the TF2 export with
`tf.saved_model.save`. Either way the same serving paths run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import tensorflow as tf

TESTDATA = Path(os.environ.get(
    "ZOO_TFSERVING_TESTDATA", Path(__file__).resolve().parents[2].parent / "shared" / "tfserving-testdata"
))
VERSION = "00000123"  # TF Serving's test models are all version 123, zero-padded
PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"

# name in TF Serving's testdata -> how to build it where the copy is absent
MODELS = ("saved_model_half_plus_two_cpu", "saved_model_half_plus_three", "saved_model_half_plus_two_tf2_cpu",
          "saved_model_counter", "saved_model_half_plus_two_2_versions", "bad_half_plus_two")


def have_originals() -> bool:
    return all((TESTDATA / name).is_dir() for name in MODELS)


def provide(name: str, destination: Path) -> Path:
    """Put TF Serving's model `name` (a base path with its version folders) at `destination`."""
    if (TESTDATA / name).is_dir():
        shutil.copytree(TESTDATA / name, destination)
        return destination
    builders = {
        "saved_model_half_plus_two_cpu": lambda: _half_plus(destination / VERSION, b=2.0),
        "saved_model_half_plus_three": lambda: _half_plus_three(destination / VERSION),
        "saved_model_half_plus_two_tf2_cpu": lambda: _half_plus_two_tf2(destination / VERSION),
        "saved_model_counter": lambda: _counter(destination / VERSION),
        "saved_model_half_plus_two_2_versions": lambda: (
            _half_plus(destination / "00000123", b=2.0, with_classify_x2=True),
            _half_plus(destination / "00000124", b=2.0, with_classify_x2=True),
        ),
        "bad_half_plus_two": lambda: _legacy_session_bundle(destination / VERSION),
    }
    builders[name]()
    return destination


def metadata_json(name: str) -> Path | None:
    """TF Serving's recorded metadata answer for a model, where the original is present."""
    path = TESTDATA / name
    return path if path.is_file() else None


def _signature(inputs: dict, outputs: dict, method: str):
    info = tf.compat.v1.saved_model.utils.build_tensor_info
    return tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        {k: info(v) for k, v in inputs.items()}, {k: info(v) for k, v in outputs.items()}, method
    )


def _save_graph(path: Path, session, signatures: dict, main_op=None) -> None:
    builder = tf.compat.v1.saved_model.Builder(str(path))
    builder.add_meta_graph_and_variables(
        session, ["serve"], signature_def_map=signatures, main_op=main_op,
        assets_collection=tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS),
    )
    builder.save()


def _half_plus(path: Path, *, b: float, with_classify_x2: bool = False) -> None:
    """y = 0.5x + b from parsed tf.Examples, as TF Serving's TF1 half_plus_two graph: x and x2
    are identities of parsed features (fed directly by the predict signatures), y2 = 0.5x + 3,
    y3 = 0.5x2 + 3, reference variables, an asset file."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        a = tf.compat.v1.Variable(0.5, name="a", use_resource=False)
        bias = tf.compat.v1.Variable(b, name="b", use_resource=False)
        c = tf.compat.v1.Variable(3.0, name="c", use_resource=False)
        examples = tf.compat.v1.placeholder(tf.string, name="tf_example", shape=[None])
        features = tf.io.parse_example(examples, {
            "x": tf.io.FixedLenFeature([1], tf.float32),
            "x2": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
        })
        x = tf.identity(features["x"], name="x")
        y = tf.identity(a * x + bias, name="y")
        y2 = tf.identity(a * x + c, name="y2")
        x2 = tf.identity(features["x2"], name="x2")
        a2 = tf.compat.v1.Variable(0.5, name="a2", use_resource=False)
        c2 = tf.compat.v1.Variable(3.0, name="c2", use_resource=False)
        y3 = tf.identity(a2 * x2 + c2, name="y3")
        asset = Path(str(path) + ".asset") / "foo.txt"
        asset.parent.mkdir(parents=True, exist_ok=True)
        asset.write_text("asset-file-contents")
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, tf.constant(str(asset)))
        session.run(tf.compat.v1.global_variables_initializer())
        signatures = {
            "serving_default": _signature({"x": x}, {"y": y}, PREDICT),
            "regress_x_to_y": _signature({"inputs": examples}, {"outputs": y}, REGRESS),
            "regress_x_to_y2": _signature({"inputs": examples}, {"outputs": y2}, REGRESS),
            "regress_x2_to_y3": _signature({"inputs": x2}, {"outputs": y3}, REGRESS),
            "classify_x_to_y": _signature({"inputs": examples}, {"scores": y}, CLASSIFY),
        }
        if with_classify_x2:
            signatures["classify_x2_to_y3"] = _signature({"inputs": x2}, {"scores": y3}, CLASSIFY)
        _save_graph(path, session, signatures)
    shutil.rmtree(asset.parent)


def _half_plus_three(path: Path) -> None:
    """y = 0.5x + 3, whose SignatureDefs say every tensor is a scalar while the graph's are
    [?, 1]: TF Serving runs it anyway (Python's tf.saved_model.load refuses it)."""
    _half_plus(path, b=3.0)
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0]
    kept = {"serving_default": graph.signature_def["serving_default"],
            REGRESS: graph.signature_def["regress_x_to_y"]}
    graph.ClearField("signature_def")
    for key, signature in kept.items():
        for info in (*signature.inputs.values(), *signature.outputs.values()):
            info.tensor_shape.Clear()  # a known rank of 0: a scalar
        graph.signature_def[key].CopyFrom(signature)
    (path / "saved_model.pb").write_bytes(saved.SerializeToString())


class _HalfPlusTwo(tf.Module):
    """The TF2 export of half_plus_two: every signature a predict method, x defaulting to [0]."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = tf.Variable(0.5), tf.Variable(2.0), tf.Variable(3.0)

    def _parsed_x(self, serialized):
        return tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
    def predict(self, x=tf.constant([0.0])):  # noqa: B008  (the default TF Serving's model has)
        return {"y": self.a * x + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_xy(self, serialized):
        return {"outputs": self.a * self._parsed_x(serialized) + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_xy2(self, serialized):
        return {"outputs": self.a * self._parsed_x(serialized) + self.c}

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32, name="inputs")])
    def x2_to_y3(self, x2):
        return {"outputs": self.a * x2 + self.c}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify_xy(self, serialized):
        return {"scores": self.a * self._parsed_x(serialized) + self.b}

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32, name="inputs")])
    def classify_x2y3(self, x2):
        return {"scores": self.a * x2 + self.c}


def _half_plus_two_tf2(path: Path) -> None:
    model = _HalfPlusTwo()
    tf.saved_model.save(model, str(path), signatures={
        "serving_default": model.predict, "regress_x_to_y": model.regress_xy,
        "regress_x_to_y2": model.regress_xy2, "regress_x2_to_y3": model.x2_to_y3,
        "classify_x_to_y": model.classify_xy, "classify_x2_to_y3": model.classify_x2y3,
    })


def _counter(path: Path) -> None:
    """A reference variable and four predict signatures that read or change it."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        counter = tf.compat.v1.Variable(0.0, dtype=tf.float32, name="counter", use_resource=False)
        with tf.name_scope("incr_counter_op"):
            increment = counter.assign_add(1.0)
        delta = tf.compat.v1.placeholder(tf.float32, name="delta")
        with tf.name_scope("incr_counter_by_op"):
            increment_by = counter.assign_add(delta)
        with tf.name_scope("reset_counter_op"):
            reset = counter.assign(0.0)
        session.run(tf.compat.v1.global_variables_initializer())
        _save_graph(path, session, {
            "get_counter": _signature({}, {"output": counter}, PREDICT),
            "incr_counter": _signature({}, {"output": increment}, PREDICT),
            "incr_counter_by": _signature({"delta": delta}, {"output": increment_by}, PREDICT),
            "reset_counter": _signature({}, {"output": reset}, PREDICT),
        })


def _legacy_session_bundle(path: Path) -> None:
    """A legacy SessionBundle export's files (export.meta, export, checkpoint): no
    saved_model.pb, so neither TF Serving nor zoo serve can load it."""
    path.mkdir(parents=True)
    (path / "checkpoint").write_text('model_checkpoint_path: "export"\n')
    (path / "export").write_bytes(b"")
    (path / "export.meta").write_bytes(b"")
