"""Dynamic batching: many small concurrent Predict requests become a few large model calls.

TF Serving's parameters, with its meaning: a batch runs when it holds `max_batch_size` rows
(`max_execution_batch_size` under `enable_large_batch_splitting`) or when its oldest
request has waited `batch_timeout_micros`; `num_batch_threads` batches run at once; at most
`max_enqueued_batches` batches wait, and a request beyond that is refused with UNAVAILABLE
at once instead of hanging. Requests are only batched with requests for the same version,
signature, output filter and per-row input shapes. As TF Serving's batching session, a
request must have inputs with one common 0th dimension, and one larger than
`max_batch_size` is refused; under `enable_large_batch_splitting` one larger than
`max_execution_batch_size` runs on its own (TF Serving splits it into several batches:
the same answers). Classify, Regress and MultiInference are not batched here.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time

import numpy as np

from zoo.server.plane.errors import Code, ServingError, invalid_argument
from zoo.server.plane.servable import Prediction, Servable


@dataclasses.dataclass(eq=False)
class _Task:
    servable: Servable
    prediction: Prediction
    rows: int
    enqueued: float
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    outputs: dict[str, np.ndarray] | None = None
    error: Exception | None = None
    abandoned: bool = False


class Batcher:
    """Joins concurrent Predict requests into shared model calls, on its own threads.

    Args:
        parameters: BatchingParameters, with defaults filled in (config.load_batching_parameters).
    """

    def __init__(self, parameters):
        self.max_batch_size = int(parameters.max_batch_size.value)  # the largest request taken
        splitting = (parameters.HasField("enable_large_batch_splitting")
                     and parameters.enable_large_batch_splitting.value)
        self.execution_size = (
            int(parameters.max_execution_batch_size.value)
            if splitting and parameters.HasField("max_execution_batch_size") else self.max_batch_size
        )
        self.timeout = parameters.batch_timeout_micros.value / 1e6
        self.max_enqueued_rows = int(parameters.max_enqueued_batches.value) * self.execution_size
        self._queues: dict[tuple, collections.deque[_Task]] = {}
        self._queued_rows = 0
        self._cond = threading.Condition()
        self.batches_run = 0  # model calls made, and the requests they answered
        self.requests_run = 0
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"zoo-batch-{i}", daemon=True)
            for i in range(int(parameters.num_batch_threads.value))
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the batch threads after the queued batches run."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def run(self, servable: Servable, prediction: Prediction, timeout: float | None = None) -> dict[str, np.ndarray]:
        """Run a prepared request in a batch; blocks until its part of the batch is back."""
        rows = batch_size(prediction.inputs)
        if rows > self.max_batch_size:
            raise invalid_argument(f"Task size {rows} is larger than maximum input batch size {self.max_batch_size}")
        if rows > self.execution_size:
            return servable.run(prediction)
        task = _Task(servable, prediction, rows, time.monotonic())
        key = (id(servable), prediction.signature.name, prediction.output_aliases,
               tuple(sorted((k, v.shape[1:], v.dtype.str) for k, v in prediction.inputs.items())))
        with self._cond:
            if self._queued_rows + rows > self.max_enqueued_rows:
                raise ServingError(
                    Code.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full "
                    f"({math.ceil(self._queued_rows / self.execution_size)} batches waiting); "
                    "retry later",
                )
            self._queues.setdefault(key, collections.deque()).append(task)
            self._queued_rows += rows
            self._cond.notify()
        if not task.done.wait(timeout):
            task.abandoned = True
            raise ServingError(Code.DEADLINE_EXCEEDED, f"Deadline exceeded after {timeout:.3f}s waiting for a batch")
        if task.error is not None:
            raise task.error
        return task.outputs

    def _work(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                while batch is None and not self._stopping:
                    self._cond.wait(self._wait_time())
                    batch = self._next_batch()
                if batch is None:
                    return
            self._run(batch)

    def _next_batch(self) -> list[_Task] | None:
        """Take a ready batch off a queue (caller holds the lock)."""
        now = time.monotonic()
        for key, queue in self._queues.items():
            queued = sum(task.rows for task in queue)
            if queued < self.execution_size and now - queue[0].enqueued < self.timeout:
                continue
            batch, size = [], 0
            while queue and size + queue[0].rows <= self.execution_size:
                task = queue.popleft()
                batch.append(task)
                size += task.rows
            self._queued_rows -= size
            if not queue:
                del self._queues[key]
            return batch
        return None

    def _wait_time(self) -> float | None:
        if not self._queues:
            return None
        oldest = min(queue[0].enqueued for queue in self._queues.values())
        return max(0.0, oldest + self.timeout - time.monotonic())

    def _run(self, batch: list[_Task]) -> None:
        batch = [task for task in batch if not task.abandoned]
        if not batch:
            return
        with self._cond:
            self.batches_run += 1
            self.requests_run += len(batch)
        first = batch[0]
        try:
            if len(batch) == 1:
                parts = [first.servable.run(first.prediction)]
            else:
                joined = {k: np.concatenate([task.prediction.inputs[k] for task in batch])
                          for k in first.prediction.inputs}
                outputs = first.servable.run(dataclasses.replace(first.prediction, inputs=joined))
                parts = _split(outputs, [task.rows for task in batch])
        except Exception as error:  # noqa: BLE001  (every waiting request gets the error)
            for task in batch:
                task.error = error
                task.done.set()
            return
        for task, part in zip(batch, parts):
            task.outputs = part
            task.done.set()


def batch_size(inputs: dict[str, np.ndarray]) -> int:
    """The request's rows: its inputs' common 0th dimension (ComputeTensorBatchSize)."""
    if not inputs:
        raise invalid_argument("Batching Run() must have at least one input tensor")
    if any(array.ndim == 0 for array in inputs.values()):
        raise invalid_argument("Batching Run() input tensors must have at least one dimension")
    sizes = {array.shape[0] for array in inputs.values()}
    if len(sizes) > 1:
        raise invalid_argument("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


def _split(outputs: dict[str, np.ndarray], rows: list[int]) -> list[dict[str, np.ndarray]]:
    total, bounds = sum(rows), np.cumsum(rows)[:-1]
    parts = [{} for _ in rows]
    for key, value in outputs.items():
        # Outputs without the batch dimension (a constant, say) go to every request whole.
        pieces = np.split(value, bounds) if value.ndim and value.shape[0] == total else [value] * len(rows)
        for part, piece in zip(parts, pieces):
            part[key] = piece
    return parts
