"""SavedModel export into the model repository, in TF Serving's layout.

A version folder holds:

    saved_model.pb, variables/, fingerprint.pb   the SavedModel TF Serving loads
    assets.extra/tf_serving_warmup_requests      PredictionLogs TF Serving replays at load
    model.keras                                  the Keras model, for retraining and transfer
    drift_profile.json                           its training rows and answers, for `zoo drift`
    model_card.json, model_card.md               what it is, how it was made, how it scored

The `serving_default` signature takes the raw, named features (the model holds its own
preprocessing) and returns named outputs: `prediction` for a regressor; `probabilities`
(or `probability`), `class_id` and `label` for a classifier. A second signature serves TF
Serving's Classify API (`classification`: `classes` and `scores`) or Regress API
(`regression`: `outputs`) from serialized `tf.Example`s with the same feature names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo import repository
from zoo.errors import ExportError
from zoo.loop import profile as drift_profile
from zoo.protocol.names import CLASSIFY_METHOD, CLASSIFY_SIGNATURE, REGRESS_METHOD, REGRESS_SIGNATURE, WARMUP_FILE
from zoo.protocol.names import DEFAULT_SIGNATURE as SIGNATURE
from zoo.repository import model_card

KERAS_FILE = "model.keras"
BINARY_THRESHOLD = 0.5
# The signatures for TF Serving's Classify and Regress APIs take serialized tf.Examples
# (the `context` + `examples` of a REST :classify / :regress request).
EXAMPLE_SIGNATURES = {
    "regression": REGRESS_SIGNATURE,
    "multiclass": CLASSIFY_SIGNATURE,
    "binary": CLASSIFY_SIGNATURE,
}
METHOD_NAMES = {
    CLASSIFY_SIGNATURE: CLASSIFY_METHOD,
    REGRESS_SIGNATURE: REGRESS_METHOD,
}


def input_specs(model: keras.Model) -> dict[str, tf.TensorSpec]:
    """The signature's inputs: one TensorSpec per model input, named after it.

    A subclassed model has no Input tensors; it names its features itself
    (`feature_names`), one float per row each.
    """
    names = getattr(model, "feature_names", None)
    if names is not None:
        return {name: tf.TensorSpec([None], tf.float32, name=name) for name in names}
    specs = {}
    for tensor in model.inputs:
        name = tensor.name
        dtype = tf.string if tensor.dtype == "string" else tf.as_dtype(tensor.dtype)
        specs[name] = tf.TensorSpec([None, *tensor.shape[1:]], dtype, name=name)
    return specs


def signature_outputs(outputs: dict[str, tf.Tensor], task: str, class_names) -> dict[str, tf.Tensor]:
    """Turn the Keras model's outputs into the signature's named outputs for its task.

    A trailing axis of size 1 is dropped, so a regressor answers `[2.5, 3.0]` rather than
    `[[2.5], [3.0]]`, as TF Serving's own examples do.
    """
    if task == "regression":
        return {name: _squeeze_last(value) for name, value in outputs.items()}
    labels = tf.constant(list(class_names))
    if task == "multiclass":
        probabilities = outputs["probabilities"]
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"probabilities": probabilities, "class_id": class_id, "label": tf.gather(labels, class_id)}
    if task == "binary":
        probability = _squeeze_last(outputs["probability"])
        class_id = tf.cast(probability >= BINARY_THRESHOLD, tf.int64)
        return {"probability": probability, "class_id": class_id, "label": tf.gather(labels, class_id)}
    raise ExportError(f"no signature outputs for task '{task}'")


def example_function(model: keras.Model, specs: dict[str, tf.TensorSpec], task: str, class_names):
    """The body of the Classify/Regress signature: serialized `tf.Example`s in, TF Serving's
    classify outputs (`classes`, `scores`) or regress output (`outputs`) out."""
    features = {
        name: tf.io.FixedLenFeature(spec.shape[1:], spec.dtype) for name, spec in specs.items()
    }

    def from_examples(examples):
        parsed = tf.io.parse_example(examples["inputs"], features)
        outputs = signature_outputs(model(parsed, training=False), task, class_names)
        if task == "regression":  # the Regress API has one value a row: the main output's
            return {"outputs": outputs.get("main", next(iter(outputs.values())))}
        if task == "binary":
            probability = outputs["probability"]
            scores = tf.stack([1.0 - probability, probability], axis=-1)
        else:
            scores = outputs["probabilities"]
        classes = tf.tile(tf.constant([list(class_names)]), [tf.shape(scores)[0], 1])
        return {"classes": classes, "scores": scores}

    return from_examples


def mark_example_signatures(folder: Path, method_names: dict[str, str] | None = None) -> None:
    """Give the Classify/Regress signatures TF Serving's method names.

    TensorFlow 2 writes every signature with the Predict method name, but TF Serving's
    Classify and Regress APIs refuse a signature whose method name is not theirs. The
    method name lives in saved_model.pb, so it is set there, and the fingerprint that
    checksums that file is written anew.
    """
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting

    path = folder / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    for meta_graph in saved_model.meta_graphs:
        for key, method in (method_names or METHOD_NAMES).items():
            if key in meta_graph.signature_def:
                meta_graph.signature_def[key].method_name = method
    path.write_bytes(saved_model.SerializeToString())
    (folder / "fingerprint.pb").write_bytes(fingerprinting.CreateFingerprintDef(str(folder)))


def _squeeze_last(value: tf.Tensor) -> tf.Tensor:
    return tf.squeeze(value, axis=-1) if value.shape.rank and value.shape[-1] == 1 else value


def export_model(
    model: keras.Model,
    *,
    name: str,
    task: str,
    class_names,
    models_dir: Path,
    card: dict[str, Any],
    warmup_rows: dict[str, np.ndarray] | None = None,
    profile_rows: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
) -> Path:
    """Export a trained model as the next version of `name` and refresh models.config.

    Args:
        model: the trained Keras model (named inputs, dict outputs).
        name: the model's name in the repository.
        task: "regression", "multiclass" or "binary": decides the signature's outputs.
        class_names: the class labels by class id (classifiers).
        models_dir: the repository root.
        card: what the model card records (dataset, split, config, metrics...); the
            version, creation time and signature are added here.
        warmup_rows: a few rows of raw features for the warm-up requests.
        profile_rows: the training and validation splits' features: the drift profile is
            the training rows and the version's answers on the validation rows.

    Returns:
        The new version's folder.
    """
    specs = input_specs(model)
    card = dict(card)

    def serve(features):
        return signature_outputs(model(features, training=False), task, class_names)

    def write(folder: Path) -> None:
        archive = keras.export.ExportArchive()
        archive.track(model)
        endpoint = archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=[specs])
        example_signature = EXAMPLE_SIGNATURES[task]
        archive.add_endpoint(
            name=example_signature,
            fn=example_function(model, specs, task, class_names),
            input_signature=[{"inputs": tf.TensorSpec([None], tf.string, name="inputs")}],
        )
        archive.write_out(str(folder), verbose=False)
        mark_example_signatures(folder)
        card["signature"] = describe_signature(endpoint.get_concrete_function(specs))
        model.save(folder / KERAS_FILE)
        if warmup_rows:
            rows = {key: warmup_rows[key] for key in specs}  # only what the signature takes
            write_warmup_requests(folder / WARMUP_FILE, name, rows)
        if profile_rows:
            train, validation = ({key: rows[key] for key in specs} for rows in profile_rows)
            answers = _answers(serve, validation, specs)
            # class_id repeats label; a probability vector's row mean is 1/k for every row.
            answers = {k: v for k, v in answers.items() if k != "class_id" and v.ndim == 1}
            drift_profile.write(folder, drift_profile.build(train, answers))

    def stamp(folder: Path, version: int) -> None:
        model_card.write(folder, {**card, "name": name, "version": version})

    models_dir = Path(models_dir)
    repository.read_serving_config(models_dir)  # a corrupt models.config fails before anything is published
    version_dir = repository.publish_version(models_dir, name, write, stamp)
    repository.write_serving_config(models_dir)
    return version_dir


def _answers(serve, features: dict[str, np.ndarray], specs: dict[str, tf.TensorSpec]) -> dict[str, np.ndarray]:
    """What the signature answers for `features`, 4,096 rows at a time."""
    rows = len(next(iter(features.values())))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, rows, 4096):
        batch = {key: tf.constant(column[start:start + 4096].astype(str) if specs[key].dtype == tf.string
                                  else column[start:start + 4096], dtype=specs[key].dtype)
                 for key, column in features.items()}
        for key, value in serve(batch).items():
            parts.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(chunks) for key, chunks in parts.items()}


def export_keras_file(keras_file: Path, *, name: str, task: str, class_names, models_dir: Path,
                      card: dict[str, Any], warmup_rows=None, profile_rows=None) -> Path:
    """Export a saved `.keras` model (e.g. a finished run's) as a new version."""
    import zoo.architectures  # noqa: F401  (registers the zoo's serializable classes)

    try:
        model = keras.saving.load_model(keras_file, compile=False)  # to predict; no loss needed
    except (OSError, ValueError) as error:
        raise ExportError(f"cannot load the Keras model {keras_file}: {error}") from None
    return export_model(model, name=name, task=task, class_names=class_names, models_dir=models_dir,
                        card=card, warmup_rows=warmup_rows, profile_rows=profile_rows)


def describe_signature(function) -> dict[str, Any]:
    """Names, dtypes and shapes of a concrete function's inputs and outputs."""
    (inputs,), _ = function.structured_input_signature

    def describe(spec: tf.TensorSpec) -> dict[str, Any]:
        return {"dtype": spec.dtype.name, "shape": [-1 if d is None else d for d in spec.shape.as_list()]}

    return {
        "name": SIGNATURE,
        "inputs": {spec.name: describe(spec) for spec in inputs.values()},
        "outputs": {key: describe(spec) for key, spec in function.structured_outputs.items()},
    }


def write_warmup_requests(path: Path, name: str, rows: dict[str, np.ndarray]) -> None:
    """Write TF Serving's warm-up file: PredictionLogs of a 1-row and a full request.

    TF Serving replays these at load time, so the first real request does not pay for
    graph tracing and memory allocation.
    """
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    size = len(next(iter(rows.values())))
    with tf.io.TFRecordWriter(str(path)) as writer:
        for count in sorted({1, size}):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=name, signature_name=SIGNATURE)
            )
            for key, column in rows.items():
                values = column[:count]
                if values.dtype.kind in "OUS":
                    values = values.astype(str).astype(object)
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
                else:
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(values.astype(np.float32)))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def load_signature(version_dir: Path):
    """The `serving_default` function of an exported version, as TF Serving would load it."""
    if not (version_dir / "saved_model.pb").is_file():
        raise ExportError(f"{version_dir} holds no SavedModel")
    return tf.saved_model.load(str(version_dir)).signatures[SIGNATURE]
