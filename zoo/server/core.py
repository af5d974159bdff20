"""The serving core: the TF Serving APIs as plain methods, shared by the REST and gRPC fronts.

A front end decodes its wire format into numpy arrays or protos, calls one method here, and
encodes what comes back; every rule about models, versions, signatures, batching, timeouts
and metrics lives here once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import time

import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    input_pb2,
    model_pb2,
    regression_pb2,
)

from zoo.server.batching import Batcher
from zoo.server.errors import Code, ServingError, invalid_argument
from zoo.server.manager import ModelManager
from zoo.server.metrics import Metrics
from zoo.server.servable import CLASSIFY_METHOD, REGRESS_METHOD, Servable, Signature

SIGNATURE_DEF_FIELD = "signature_def"


@dataclasses.dataclass(frozen=True)
class Target:
    """Which model a request is for: TF Serving's ModelSpec, decoded."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""

    @classmethod
    def from_spec(cls, spec: model_pb2.ModelSpec) -> Target:
        choice = spec.WhichOneof("version_choice")
        return cls(
            name=spec.name,
            version=spec.version.value if choice == "version" else None,
            label=spec.version_label if choice == "version_label" else None,
            signature_name=spec.signature_name,
        )

    def spec(self, servable: Servable, signature_name: str) -> model_pb2.ModelSpec:
        """The ModelSpec a response carries: the version that actually served."""
        spec = model_pb2.ModelSpec(name=self.name, signature_name=signature_name)
        spec.version.value = servable.version
        return spec


class ServingCore:
    def __init__(self, manager: ModelManager, *, batcher: Batcher | None = None,
                 metrics: Metrics | None = None, workers: int = 16):
        self.manager = manager
        self.batcher = batcher
        self.metrics = metrics or Metrics()
        # Only used for requests with a deadline, so a slow model cannot hold the answer.
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="zoo-timed")

    def close(self) -> None:
        self.manager.stop()
        if self.batcher is not None:
            self.batcher.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    @contextlib.contextmanager
    def observe(self, target_name: str, api: str, entrypoint: str):
        """Count and time a request for the metrics, under the status it ends with."""
        started = time.perf_counter()
        status = "OK"
        try:
            yield
        except ServingError as error:
            status = error.code.name
            raise
        except Exception:
            status = "INTERNAL"
            raise
        finally:
            self.metrics.observe(target_name, api, entrypoint, status, time.perf_counter() - started)

    # -- Predict ---------------------------------------------------------------------------

    def signature(self, target: Target) -> tuple[Servable, Signature]:
        """The servable and signature a request resolves to (REST needs the input dtypes
        before it can decode the JSON)."""
        servable = self.manager.resolve(target.name, target.version, target.label)
        return servable, servable.signature(target.signature_name)

    def predict(self, target: Target, inputs: dict[str, np.ndarray], output_filter=(),
                timeout: float | None = None, servable: Servable | None = None,
                answer_at_deadline: bool = True):
        """Returns (servable, signature, outputs).

        `timeout` is the request's deadline in seconds. With `answer_at_deadline` the model
        runs on a worker thread so that DEADLINE_EXCEEDED goes out on time even while it
        still runs (REST). gRPC passes False: its runtime ends the call at the client's
        deadline by itself, and the hand-off would cost every request two thread switches.
        Batched requests wait for their batch at most `timeout` either way.
        """
        servable = servable or self.manager.resolve(target.name, target.version, target.label)
        signature = servable.prepare(target.signature_name, inputs, output_filter)
        if self.batcher is not None:
            outputs = self.batcher.run(servable, signature, inputs, output_filter, timeout)
        elif answer_at_deadline:
            outputs = self._with_deadline(servable.execute, timeout, signature, inputs, output_filter)
        else:
            outputs = servable.execute(signature, inputs, output_filter)
        return servable, signature, outputs

    def _with_deadline(self, function, timeout: float | None, *args):
        if timeout is None:
            return function(*args)
        future = self._executor.submit(function, *args)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise ServingError(Code.DEADLINE_EXCEEDED, f"Deadline exceeded after {timeout:.3f}s") from None

    # -- Classify / Regress ----------------------------------------------------------------

    def classify(self, target: Target, model_input: input_pb2.Input, timeout: float | None = None):
        servable, signature, outputs = self._run_examples(target, model_input, CLASSIFY_METHOD, timeout)
        result = classification_pb2.ClassificationResult()
        scores = outputs.get("scores")
        classes = outputs.get("classes")
        shaped = scores if scores is not None else classes
        if shaped is None:
            raise invalid_argument(f"classification signature '{signature.name}' has neither 'classes' nor 'scores'")
        rows, width = shaped.shape[:2]
        for row in range(rows):
            classification = result.classifications.add()
            for column in range(width):
                item = classification.classes.add()
                if classes is not None:
                    item.label = _text(classes[row, column])
                if scores is not None:
                    item.score = float(scores[row, column])
        return target.spec(servable, signature.name), result

    def regress(self, target: Target, model_input: input_pb2.Input, timeout: float | None = None):
        servable, signature, outputs = self._run_examples(target, model_input, REGRESS_METHOD, timeout)
        if "outputs" not in outputs:
            raise invalid_argument(f"regression signature '{signature.name}' has no 'outputs' tensor")
        values = np.asarray(outputs["outputs"]).reshape(-1)
        result = regression_pb2.RegressionResult()
        for value in values:
            result.regressions.add(value=float(value))
        return target.spec(servable, signature.name), result

    def _run_examples(self, target: Target, model_input: input_pb2.Input, method: str, timeout):
        servable = self.manager.resolve(target.name, target.version, target.label)
        serialized = serialize_examples(model_input)
        signature, outputs = self._with_deadline(
            servable.run_examples, timeout, target.signature_name, method, serialized
        )
        return servable, signature, outputs

    # -- Status and metadata ---------------------------------------------------------------

    def status(self, target: Target):
        return self.manager.status(target.name, target.version, target.label)

    def metadata(self, target: Target, fields=(SIGNATURE_DEF_FIELD,)):
        for field in fields:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {field} is not supported")
        if not fields:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        servable = self.manager.resolve(target.name, target.version, target.label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = target.name
        response.model_spec.version.value = servable.version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, definition in servable.meta_graph.signature_def.items():
            signatures.signature_def[key].CopyFrom(definition)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signatures)
        return response


def serialize_examples(model_input: input_pb2.Input) -> list[bytes]:
    """The serialized tf.Examples of a Classify/Regress input, context merged into each.

    Concatenating two serialized protos merges them, with the later one winning for a
    feature both set: the same trick TF Serving uses to apply `context`.
    """
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        examples, context = model_input.example_list.examples, b""
    elif kind == "example_list_with_context":
        examples = model_input.example_list_with_context.examples
        context = model_input.example_list_with_context.context.SerializeToString()
    else:
        raise invalid_argument("Input is empty: it needs example_list or example_list_with_context")
    if not examples:
        raise invalid_argument("Input is empty: no examples")
    return [context + example.SerializeToString() for example in examples]


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

