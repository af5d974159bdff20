"""Classify, Regress and MultiInference: serialized tf.Examples in, results out.

As TF Serving's classifier.cc, regressor.cc and multi_inference.cc: the signature is looked
up by name; its method name is only checked under `--enable_signature_method_name_check`
(TF2 exports write every signature as a predict method, and TF Serving serves them through
these APIs all the same); otherwise its shape is checked (one input, `inputs`; `classes`
and/or `scores`, or `outputs`). The examples go in as one string tensor, the `context`
prepended to each example's bytes (two concatenated serialized protos parse as their
merge, the later winning), and the outputs are checked against the number of examples.
"""

from __future__ import annotations

import contextlib

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, inference_pb2, input_pb2, regression_pb2

from zoo.server.plane.errors import Code, ServingError, invalid_argument
from zoo.server.plane.servable import (
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    REGRESS_METHOD,
    Servable,
    Signature,
    type_name,
)

CLASSIFY_INPUTS, CLASSES, SCORES = "inputs", "classes", "scores"
REGRESS_INPUTS, REGRESS_OUTPUTS = "inputs", "outputs"


def serialized_examples(model_input: input_pb2.Input) -> np.ndarray:
    """The Input's examples as a string tensor, each with the context merged in."""
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        examples, context = model_input.example_list.examples, b""
    elif kind == "example_list_with_context":
        examples = model_input.example_list_with_context.examples
        context = model_input.example_list_with_context.context.SerializeToString()
    else:
        examples, context = (), b""
    if not examples:
        raise invalid_argument("Input is empty.")
    return np.array([context + example.SerializeToString() for example in examples], dtype=object)


# -- Classify --------------------------------------------------------------------------------


def classification_signature(servable: Servable, name: str) -> Signature:
    """GetClassificationSignatureDef: the named signature, usable for Classify."""
    signature = _named(servable, name)
    with _hint_usable(servable, _classification_tensors):
        _classification_tensors(signature, servable.check_method_names)
    return signature


def _classification_tensors(signature: Signature, check_method: bool) -> tuple[str, list[str]]:
    """PreProcessClassification: the input tensor's name and the output tensors' names."""
    if check_method:
        _require_method(signature, CLASSIFY_METHOD, "classification")
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise invalid_argument(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if CLASSIFY_INPUTS not in signature.inputs:
        raise invalid_argument(f"No classification inputs found in SignatureDef: {_debug(signature)}")
    outputs = [signature.outputs[key].tensor_name for key in (CLASSES, SCORES) if key in signature.outputs]
    if not outputs:
        raise invalid_argument(
            f'Expected classification signature outputs to contain at least one of "{CLASSES}" or '
            f'"{SCORES}". Signature was: {_debug(signature)}'
        )
    return signature.inputs[CLASSIFY_INPUTS].tensor_name, outputs


def classify(servable: Servable, signature: Signature, model_input: input_pb2.Input):
    """Run a Classify request on a signature from `classification_signature`."""
    examples = serialized_examples(model_input)
    input_name, output_names = _classification_tensors(signature, servable.check_method_names)
    values = servable.run_tensors([input_name], output_names, [examples])
    return classification_result(signature, len(examples), dict(zip(output_names, values)))


def classification_result(signature: Signature, rows: int, by_tensor: dict[str, np.ndarray]):
    """PostProcessClassificationResult: the ClassificationResult, after checking the outputs."""
    classes = _fetched(signature, CLASSES, by_tensor)
    scores = _fetched(signature, SCORES, by_tensor)
    for key, value, dtype in ((CLASSES, classes, "DT_STRING"), (SCORES, scores, "DT_FLOAT")):
        if value is None:
            continue
        if value.ndim != 2:
            raise invalid_argument(f"Expected Tensor shape: [batch_size num_classes] but got {_shape(value)}")
        if _proto_dtype(value) != dtype:
            raise invalid_argument(f"Expected {key} Tensor of {dtype}. Got: {_proto_dtype(value)}")
        if value.shape[0] != rows:
            raise invalid_argument(f"Expected {key} output batch size of {rows}. Got: {value.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    width = (classes if classes is not None else scores).shape[1]
    result = classification_pb2.ClassificationResult()
    for row in range(rows):
        classification = result.classifications.add()
        for column in range(width):
            item = classification.classes.add()
            if classes is not None:
                item.label = _text(classes[row, column])
            if scores is not None:
                item.score = float(scores[row, column])
    return result


# -- Regress ---------------------------------------------------------------------------------


def regression_signature(servable: Servable, name: str) -> Signature:
    """GetRegressionSignatureDef: the named signature, usable for Regress."""
    signature = _named(servable, name)
    with _hint_usable(servable, _regression_tensors):
        _regression_tensors(signature, servable.check_method_names)
    return signature


def _regression_tensors(signature: Signature, check_method: bool) -> tuple[str, list[str]]:
    """PreProcessRegression: the input tensor's name and the output tensor's name."""
    if check_method:
        _require_method(signature, REGRESS_METHOD, "regression")
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if REGRESS_INPUTS not in signature.inputs:
        raise invalid_argument(f"No regression inputs found in SignatureDef: {_debug(signature)}")
    if REGRESS_OUTPUTS not in signature.outputs:
        raise invalid_argument(f"No regression outputs found in SignatureDef: {_debug(signature)}")
    return signature.inputs[REGRESS_INPUTS].tensor_name, [signature.outputs[REGRESS_OUTPUTS].tensor_name]


def regress(servable: Servable, signature: Signature, model_input: input_pb2.Input):
    """Run a Regress request on a signature from `regression_signature`."""
    examples = serialized_examples(model_input)
    input_name, output_names = _regression_tensors(signature, servable.check_method_names)
    values = servable.run_tensors([input_name], output_names, [examples])
    return regression_result(signature, len(examples), dict(zip(output_names, values)))


def regression_result(signature: Signature, rows: int, by_tensor: dict[str, np.ndarray]):
    """PostProcessRegressionResult: the RegressionResult, after checking the output."""
    value = _fetched(signature, REGRESS_OUTPUTS, by_tensor)
    if value is None:
        raise invalid_argument(f"Could not find output tensor '{signature.outputs[REGRESS_OUTPUTS].tensor_name}'")
    if not (value.ndim == 1 or (value.ndim == 2 and value.shape[1] == 1)):
        raise invalid_argument(
            f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {_shape(value)}"
        )
    if value.shape[0] != rows:
        raise invalid_argument(f"Input batch size did not match output batch size: {rows} vs. {value.shape[0]}")
    if _proto_dtype(value) != "DT_FLOAT":
        raise invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {_proto_dtype(value)}")
    result = regression_pb2.RegressionResult()
    for number in value.reshape(-1):
        result.regressions.add(value=float(number))
    return result


# -- MultiInference --------------------------------------------------------------------------


def multi_inference(servable: Servable, request: inference_pb2.MultiInferenceRequest):
    """Several Classify/Regress tasks on one model, one Session::Run for all of them.

    Returns a MultiInferenceResponse whose results carry the request's model specs.
    """
    signatures, inputs, outputs = [], set(), set()
    model_name = ""
    for task in request.tasks:
        if not task.model_spec.name:
            raise invalid_argument("Found ModelSpec with an empty model name.")
        if model_name and task.model_spec.name != model_name:
            raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        model_name = task.model_spec.name
        name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if name in (s.name for s in signatures):
            raise invalid_argument(f"Duplicate evaluation of signature: {name}")
        signature = servable.signatures.get(name)
        if signature is None:
            raise invalid_argument(f"Requested signature not found in model graph: {name}")
        if task.method_name == CLASSIFY_METHOD:
            input_name, output_names = _classification_tensors(signature, servable.check_method_names)
        elif task.method_name == REGRESS_METHOD:
            input_name, output_names = _regression_tensors(signature, servable.check_method_names)
        else:
            raise ServingError(Code.UNIMPLEMENTED, f"Unsupported signature method_name: {task.method_name}")
        signatures.append(signature)
        inputs.add(input_name)
        outputs.update(output_names)
    examples = serialized_examples(request.input)
    feeds, fetches = sorted(inputs), sorted(outputs)
    values = servable.run_tensors(feeds, fetches, [examples] * len(feeds))
    by_tensor = dict(zip(fetches, values))
    response = inference_pb2.MultiInferenceResponse()
    for task, signature in zip(request.tasks, signatures):
        result = response.results.add()
        if task.method_name == CLASSIFY_METHOD:
            result.classification_result.CopyFrom(classification_result(signature, len(examples), by_tensor))
        else:
            result.regression_result.CopyFrom(regression_result(signature, len(examples), by_tensor))
        result.model_spec.name = task.model_spec.name
        result.model_spec.signature_name = signature.name
        result.model_spec.version.value = servable.version
    return response


# -- helpers -------------------------------------------------------------------------------


def _named(servable: Servable, name: str) -> Signature:
    name = name or DEFAULT_SIGNATURE
    signature = servable.signatures.get(name)
    if signature is None:
        raise invalid_argument(f"No signature was found with the name: {name}")
    return signature


@contextlib.contextmanager
def _hint_usable(servable: Servable, check):
    """Add to TF Serving's refusal the signature that would have served, if there is one
    (the zoo's exports serve tf.Examples through "classification" or "regression")."""
    try:
        yield
    except ServingError as error:
        usable = sorted(s.name for s in servable.signatures.values() if _passes(check, s, servable))
        if usable:
            error.message += f' (this model takes tf.Examples through signature "{usable[0]}")'
        raise


def _passes(check, signature: Signature, servable: Servable) -> bool:
    try:
        check(signature, servable.check_method_names)
        return True
    except ServingError:
        return False


def _require_method(signature: Signature, method: str, kind: str) -> None:
    if signature.method_name != method:
        raise invalid_argument(f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}")


def _fetched(signature: Signature, alias: str, by_tensor: dict[str, np.ndarray]) -> np.ndarray | None:
    binding = signature.outputs.get(alias)
    return None if binding is None else by_tensor.get(binding.tensor_name)


def _proto_dtype(value: np.ndarray) -> str:
    if value.dtype.kind in "OSU":
        return "DT_STRING"
    return "DT_" + type_name(tf.as_dtype(value.dtype)).upper()


def _shape(value: np.ndarray) -> str:
    return "[" + ",".join(map(str, value.shape)) + "]"


def _debug(signature: Signature) -> str:
    return " ".join(str(signature.definition).split())


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
