"""One loaded model version, run the way TensorFlow Serving's C++ runs it.

TF Serving loads a SavedModel into a TensorFlow session (the meta graph of its tag set,
`serve`), then runs each request as one `Session::Run` over the SignatureDef's tensor names.
This module does the same from Python: `tf.compat.v1` loads the SavedModel into a session
of its own graph, and each (feeds, fetches) pair becomes a session callable
(`Session::MakeCallable`). That one path serves TF1 exports (reference variables, a
stateful counter, SignatureDefs that disagree with the graph's static shapes), TF2 and
Keras 3 exports alike, and, as in TF Serving, a tensor reaches the graph with the shape it
was sent in: the only shape check is the graph's own. (TensorFlow's Python `Session.run`
and `tf.saved_model.load` add shape checks that the C++ session does not have; neither is
used here.)

A Predict request is checked as TF Serving's predict_util.cc checks it, in the same order
and with the same words: the signature, the number of inputs, each input by alias (a
signature's `defaults` fill in what was not sent), the output filter. The zoo adds one
check before the session runs: each input's dtype, naming the input (the session would
refuse it too, naming only an argument index).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow.python.util import deprecation

from zoo.protocol import tensor_protos
from zoo.protocol.names import CLASSIFY_METHOD, DEFAULT_SIGNATURE, PREDICT_METHOD, REGRESS_METHOD, SERVE_TAG
from zoo.server.plane.errors import Code, ServingError, invalid_argument
from zoo.server.plane.object_graph_restore import restore_uninitialized

log = logging.getLogger("zoo.server")

# Session callables kept per version. Each is a pruned executor for one (feeds, fetches)
# pair; output filters make those pairs unbounded, so the least recently used go.
_MAX_CALLABLES = 64


@dataclasses.dataclass(frozen=True)
class TensorBinding:
    """One input or output of a signature: the graph tensor behind an alias."""

    tensor_name: str  # e.g. "x:0", "serving_default_alcohol:0"
    dtype: tf.DType  # the graph's dtype where the graph has the tensor (what Session::Run checks)
    shape: tuple[int, ...] | None  # the SignatureDef's; -1 unknown; None unknown rank

    @classmethod
    def from_info(cls, info: meta_graph_pb2.TensorInfo, graph: tf.Graph) -> TensorBinding:
        """The graph tensor a SignatureDef's TensorInfo names, with its declared dtype and shape."""
        shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
        dtype = tf.dtypes.as_dtype(info.dtype) if info.dtype else None
        try:
            dtype = graph.get_tensor_by_name(info.name).dtype
        except (KeyError, ValueError):
            pass  # a name the graph lacks fails when it is run, as in TF Serving
        return cls(info.name, dtype, shape)

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        """Whether a tensor of `shape` fits the declared shape (unknown dimensions match any)."""
        if self.shape is None:
            return True
        return len(shape) == len(self.shape) and all(w in (-1, g) for w, g in zip(self.shape, shape))

    def describe_shape(self) -> str:
        """The declared shape as TF Serving's messages write it."""
        return "[?]" if self.shape is None else "[" + ",".join(map(str, self.shape)) + "]"


@dataclasses.dataclass(frozen=True)
class Signature:
    """A SignatureDef, bound to the loaded graph."""

    name: str
    method_name: str
    inputs: dict[str, TensorBinding]
    outputs: dict[str, TensorBinding]
    defaults: dict[str, np.ndarray]  # SignatureDef.defaults: values for inputs not sent
    definition: meta_graph_pb2.SignatureDef


@dataclasses.dataclass(frozen=True)
class Prediction:
    """A Predict request checked against its signature: what runs, and what comes back."""

    signature: Signature
    inputs: dict[str, np.ndarray]  # by alias, defaults filled in
    output_aliases: tuple[str, ...]


class Servable:
    """A SavedModel version loaded into a TensorFlow session, ready to serve.

    Args:
        name, version: what it serves as.
        path: the version's folder.
        tags: the meta graph to load (`--saved_model_tags`).
        session_config: the session's ConfigProto (thread pools).
        check_method_names: `--enable_signature_method_name_check`.
    """

    def __init__(self, name: str, version: int, path: Path, *, tags=(SERVE_TAG,),
                 session_config: config_pb2.ConfigProto | None = None, check_method_names: bool = False):
        self.name = name
        self.version = version
        self.path = Path(path)
        self.tags = tuple(tags)
        self.check_method_names = check_method_names
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph, config=session_config)
        try:
            with self.graph.as_default():
                # Restores the variables and runs the init op (legacy_init_op, main_op or
                # TF2's __saved_model_init_op), as TF Serving's LoadSavedModel does. The TF1
                # loader is the point (TF1 exports, graph tensors by name), so its
                # deprecation notice is not for the user who starts the server.
                with deprecation.silence():
                    self.meta_graph = tf.compat.v1.saved_model.loader.load(self.session, list(tags), str(self.path))
            restore_uninitialized(self.session, self.graph, self.path, self.meta_graph)
        except BaseException:
            self.session.close()
            raise
        self.signatures = {
            key: Signature(
                name=key,
                method_name=definition.method_name,
                inputs={a: TensorBinding.from_info(i, self.graph) for a, i in definition.inputs.items()},
                outputs={a: TensorBinding.from_info(i, self.graph) for a, i in definition.outputs.items()},
                defaults={a: tensor_protos.to_array(p) for a, p in definition.defaults.items()},
                definition=definition,
            )
            for key, definition in self.meta_graph.signature_def.items()
        }
        self._callables: collections.OrderedDict[tuple, object] = collections.OrderedDict()
        self._callables_lock = threading.Lock()

    def close(self) -> None:
        """Release the session now (otherwise it goes when the last reference does)."""
        self.session.close()

    # -- Predict ---------------------------------------------------------------------------

    def signature(self, name: str | None) -> Signature:
        """The signature a Predict request names (FAILED_PRECONDITION if there is none)."""
        name = name or DEFAULT_SIGNATURE
        signature = self.signatures.get(name)
        if signature is None:
            raise ServingError(Code.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
        return signature

    def input_signature(self, name: str | None) -> Signature:
        """The signature a REST :predict body is decoded against, as TF Serving's REST
        handler looks it up (INVALID_ARGUMENT, and different words, if there is none)."""
        name = name or DEFAULT_SIGNATURE
        signature = self.signatures.get(name)
        if signature is None:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        return signature

    def prepare(self, signature_name: str | None, inputs: dict[str, np.ndarray], output_filter=()) -> Prediction:
        """Check a Predict request against its signature, as TF Serving's PreProcessPrediction."""
        signature = self.signature(signature_name)
        if self.check_method_names and signature.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
            raise ServingError(
                Code.INTERNAL,
                f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, {CLASSIFY_METHOD}, "
                f"{REGRESS_METHOD}}}. Was: {signature.method_name}",
            )
        fed = _input_values(signature, inputs)
        aliases = _output_aliases(signature, output_filter)
        _check_dtypes(signature, fed)
        return Prediction(signature, fed, aliases)

    def run(self, prediction: Prediction) -> dict[str, np.ndarray]:
        """Run a prepared Predict request; the outputs by alias."""
        signature = prediction.signature
        feed_aliases = sorted(prediction.inputs)
        feeds = [signature.inputs[alias].tensor_name for alias in feed_aliases]
        fetches = [signature.outputs[alias].tensor_name for alias in prediction.output_aliases]
        try:
            values = self.run_tensors(feeds, fetches, [prediction.inputs[alias] for alias in feed_aliases])
        except ServingError as error:
            if error.code == Code.INVALID_ARGUMENT:
                error.message += _shape_hint(signature, prediction.inputs)
            raise
        return dict(zip(prediction.output_aliases, values))

    def predict(self, signature_name: str | None, inputs: dict[str, np.ndarray],
                output_filter=()) -> tuple[Signature, dict[str, np.ndarray]]:
        """Check and run a Predict request: (its signature, its outputs by alias)."""
        prediction = self.prepare(signature_name, inputs, output_filter)
        return prediction.signature, self.run(prediction)

    # -- running tensors -------------------------------------------------------------------

    def run_tensors(self, feeds: list[str], fetches: list[str], values: list[np.ndarray]) -> list[np.ndarray]:
        """One Session::Run: feed tensors by name, fetch tensors by name.

        Errors come back as ServingErrors with TensorFlow's status code and the first
        line of its message (the rest names graph nodes).
        """
        call = self._callable(tuple(feeds), tuple(fetches))
        try:
            results = call(*values)
        except tf.errors.OpError as error:
            raise ServingError(_code(error), _first_line(error.message)) from None
        except (TypeError, ValueError) as error:  # a value the C API cannot turn into a tensor
            raise invalid_argument(_first_line(str(error))) from None
        return [np.asarray(result) for result in results]

    def _callable(self, feeds: tuple[str, ...], fetches: tuple[str, ...]):
        key = (feeds, fetches)
        with self._callables_lock:
            call = self._callables.get(key)
            if call is not None:
                self._callables.move_to_end(key)
                return call
        options = config_pb2.CallableOptions(feed=feeds, fetch=fetches)
        try:
            call = self.session._make_callable_from_options(options)  # noqa: SLF001  (Session::MakeCallable)
        except tf.errors.OpError as error:
            raise ServingError(_code(error), _first_line(error.message)) from None
        with self._callables_lock:
            call = self._callables.setdefault(key, call)
            self._callables.move_to_end(key)
            while len(self._callables) > _MAX_CALLABLES:
                # In-flight calls hold their own reference; the executor goes with the last one.
                self._callables.popitem(last=False)
        return call


def _input_values(signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """TF Serving's VerifyRequestInputsSize, then saved_model::GetInputValues."""
    sent, expected = set(inputs), set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
        )
    fed = {}
    for alias in sorted(signature.inputs):
        if alias in inputs:
            fed[alias] = inputs[alias]
        elif alias in signature.defaults:
            fed[alias] = signature.defaults[alias]
        else:
            raise invalid_argument(
                f"Signature input alias: {alias}(feed name: {signature.inputs[alias].tensor_name}) not found in "
                f"request and no default value provided. Inputs expected to be in the request "
                f"{{{','.join(sorted(sent))}}}, or default input alias set: {{{','.join(sorted(signature.defaults))}}}"
            )
    if sent - expected:
        raise invalid_argument(
            f"Inputs contains invalid name. Used request inputs: {','.join(sorted(sent & expected))}, "
            f"request input: {','.join(sorted(sent))}"
        )
    return fed


def _output_aliases(signature: Signature, output_filter) -> tuple[str, ...]:
    """The filtered output aliases, or every output (in the SignatureDef's order)."""
    seen = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be "
                f"in the set {{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return tuple(seen) or tuple(signature.outputs)


def _check_dtypes(signature: Signature, inputs: dict[str, np.ndarray]) -> None:
    for alias, array in inputs.items():
        dtype = signature.inputs[alias].dtype
        if dtype is not None and not _dtype_compatible(array, dtype):
            raise invalid_argument(
                f"input '{alias}': expects {type_name(dtype)} but {_dtype_name(array)} is provided"
            )


def _shape_hint(signature: Signature, inputs: dict[str, np.ndarray]) -> str:
    """Where the graph refused an input, say which input's shape the signature did not expect."""
    for alias, array in sorted(inputs.items()):
        binding = signature.inputs[alias]
        if not binding.accepts_shape(array.shape):
            return (f" (input '{alias}': has shape [{','.join(map(str, array.shape))}] but the signature "
                    f"expects {binding.describe_shape()}, -1: any size)")
    return ""


def _code(error: tf.errors.OpError) -> Code:
    """The gRPC status code of a TensorFlow error (both use the canonical code numbers)."""
    return next((code for code in Code if code.value[0] == error.error_code), Code.UNKNOWN)


def _first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return lines[0] if lines else message


def _dtype_compatible(array: np.ndarray, dtype: tf.DType) -> bool:
    if dtype == tf.string:
        return array.dtype.kind in "OSU"
    return array.dtype == dtype.as_numpy_dtype


def _dtype_name(array: np.ndarray) -> str:
    if array.dtype.kind in "OSU":
        return "string"
    try:
        return type_name(tf.as_dtype(array.dtype))
    except TypeError:
        return str(array.dtype)


def type_name(dtype: tf.DType) -> str:
    """TensorFlow's DataTypeString: "float" for DT_FLOAT, as TF Serving's messages say it."""
    return types_pb2.DataType.Name(dtype.as_datatype_enum).removeprefix("DT_").lower()
