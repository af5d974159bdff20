"""Request logging as TF Serving specifies it: `logging_config` in models.config, per model.

    logging_config {
      log_collector_config { type: "tfrecord" filename_prefix: "/logs/dnn-regressor" }
      sampling_config { sampling_rate: 0.25 }
    }

TF Serving's open-source build has no log collector (a config that sets one fails at start
with "No request-logger-creator provided"); the zoo's collector `tfrecord` writes TFRecord
files of `tensorflow.serving.PredictionLog`, the format of TF Serving's warm-up files, as
`<filename_prefix>-<UTC start>-<sequence>.tfrecord`. Each sampled request that was answered
becomes one record: `log_metadata` (model name, the version that served, the signature, the
sampling config, the tags) and the request and response, whatever protocol carried them (TF
Serving's REST and gRPC Predict, Classify, Regress, MultiInference, and the Open Inference
Protocol's inference, as a PredictLog).

Nothing here may slow or fail a request: the request thread only samples and appends a
closure (its arrays by reference) to a queue, and a writer thread per model, waking every
DRAIN_SECONDS, builds the records (a Predict's as wire bytes: predict_log_wire) and writes
them (tfrecord_file: framed in Python, without giving the GIL up per record). The queue is bounded in records and in
bytes; a full queue, or a write that fails (a full disk, a folder that went away), drops the
record and counts it in
`:tensorflow:serving:request_log_dropped_count{model_name,reason}`. Files rotate at
`FILE_BYTES`; the writer flushes at least every `FLUSH_SECONDS`; closing (SIGTERM's drain)
writes what is queued.
"""

from __future__ import annotations

import collections
import datetime
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from zoo.server.plane.tfrecord_file import TFRecordFile

log = logging.getLogger("zoo.server")

COLLECTORS = ("tfrecord",)
QUEUE_RECORDS = 10_000
QUEUE_BYTES = 256 << 20  # what queued requests may hold of memory, per model
FILE_BYTES = 64 << 20
FLUSH_SECONDS = 1.0
DRAIN_SECONDS = 0.05  # the writer takes what is queued this often: a wake-up per record would cost the
#                       request threads the GIL each time (1-row x32 gRPC at 0.7x of logging off, measured)
# The writer gives up the GIL every YIELD_EVERY records (~1 ms of work). Not after every
# record: each time it takes the GIL back it forces a request thread off it, and at 1-row x32
# that convoy cost 15% of the throughput with the writer doing no work at all (0.85x of
# logging off; 0.91-0.99x yielding never). Never would hold it for a whole burst.
YIELD_EVERY = 64
RETRY_SECONDS = 1.0  # after a failed write, how long records are dropped before the next file is tried


def check_logging_config(model_name: str, logging_config) -> str | None:
    """Why a model's logging_config cannot be served (TF Serving's checks, and a collector the
    zoo has), or None."""
    collector = logging_config.log_collector_config
    if collector.type not in COLLECTORS:
        return (f"model {model_name}: logging_config.log_collector_config.type '{collector.type[:100]}' is not a "
                f"log collector zoo serve has ({', '.join(COLLECTORS)})")
    if not collector.filename_prefix:
        return f"model {model_name}: logging_config.log_collector_config.filename_prefix is empty"
    rate = logging_config.sampling_config.sampling_rate
    if not 0.0 <= rate <= 1.0:
        return f"model {model_name}: logging_config.sampling_config.sampling_rate {rate} is not in [0, 1]"
    return None


class RequestLogs:
    """The loggers of every model with a logging_config, made as its config asks (and made
    again when a reload changes it).

    Args:
        on_drop: called with (model name, reason) for each record dropped.
        on_write: called with the model name for each record written.
    """

    def __init__(self, on_drop: Callable[[str, str], None], on_write: Callable[[str], None]):
        self._on_drop = on_drop
        self._on_write = on_write
        # model -> (its logging_config serialized, its logger, the config object last seen)
        self._loggers: dict[str, tuple[bytes, ModelLogger, object]] = {}
        self._lock = threading.Lock()

    def log(self, model_name: str, logging_config, size: int, build: Callable[[], object]) -> None:
        """Log one answered request of `model_name` if its config says so and it is sampled.
        `build()` makes the PredictionLog on the writer thread; `size` is about what the
        closure holds (bytes)."""
        if logging_config is None:
            return
        logger = self._logger(model_name, logging_config)
        if random.random() < logger.sampling_rate:  # noqa: S311  (sampling, not secrecy)
            logger.put(size, build)

    def _logger(self, model_name: str, logging_config) -> ModelLogger:
        current = self._loggers.get(model_name)
        if current is not None and current[2] is logging_config:  # the same config entry as last time
            return current[1]
        key = logging_config.SerializeToString()  # a reloaded config: the same settings keep their logger
        with self._lock:
            current = self._loggers.get(model_name)
            if current is not None and current[0] == key:
                self._loggers[model_name] = (key, current[1], logging_config)
                return current[1]
            logger = ModelLogger(model_name, logging_config, self._on_drop, self._on_write)
            self._loggers[model_name] = (key, logger, logging_config)
        if current is not None:
            current[1].close()
        return logger

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and close every file."""
        with self._lock:
            loggers, self._loggers = [logger for _, logger, _ in self._loggers.values()], {}
        for logger in loggers:
            logger.close(timeout)


class ModelLogger:
    """One model's queue, writer thread and files."""

    def __init__(self, model_name: str, logging_config, on_drop, on_write):
        self.model_name = model_name
        self.sampling_rate = logging_config.sampling_config.sampling_rate
        self.prefix = logging_config.log_collector_config.filename_prefix
        self._on_drop, self._on_write = on_drop, on_write
        self._queue: collections.deque = collections.deque()
        self._queued_bytes = 0
        self._bytes_lock = threading.Lock()
        self._closing = threading.Event()
        self._started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        self._sequence = 0
        self._writer = None
        self._written = 0
        self._unflushed = 0  # records written since the last flush: lost with the buffer if it fails
        self._failed_until = 0.0
        self._thread = threading.Thread(target=self._run, name=f"zoo-request-log-{model_name[:40]}", daemon=True)
        self._thread.start()

    def put(self, size: int, build) -> None:
        """Queue one record, or drop it (counted) when the queue is full. No thread is woken:
        the writer drains the queue every DRAIN_SECONDS."""
        with self._bytes_lock:
            if self._queued_bytes + size > QUEUE_BYTES or len(self._queue) >= QUEUE_RECORDS:
                full = True
            else:
                full = False
                self._queued_bytes += size
                self._queue.append((size, build))
        if full:
            self._on_drop(self.model_name, "queue_full")

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then close the file."""
        self._closing.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            closing = self._closing.wait(DRAIN_SECONDS)
            written = 0
            while self._queue:
                size, build = self._queue.popleft()
                with self._bytes_lock:
                    self._queued_bytes -= size
                self._write(build)
                written += 1
                if written % YIELD_EVERY == 0:
                    time.sleep(0)  # hand the GIL to the request threads now and then
            if self._writer is not None and (closing or time.monotonic() - last_flush >= FLUSH_SECONDS):
                self._flush()
                last_flush = time.monotonic()
            if closing:
                break
        self._close_file()

    def _write(self, build) -> None:
        if time.monotonic() < self._failed_until:
            self._on_drop(self.model_name, "write_failed")
            return
        try:
            record = build()
            if not isinstance(record, bytes):  # a message; a Predict's record comes serialized
                record = record.SerializeToString()
        except Exception:  # noqa: BLE001  (a record that cannot be built is dropped, never the server)
            log.exception("request log of %s: a record could not be built", self.model_name)
            self._on_drop(self.model_name, "unserializable")
            return
        try:
            if self._writer is None or self._written >= FILE_BYTES:
                self._next_file()
            self._writer.write(record)
            self._written += len(record) + 16  # TFRecord framing: length, two CRCs
            self._unflushed += 1
            self._on_write(self.model_name)
        except Exception as error:  # noqa: BLE001  (a full disk or a missing folder drops records, counted)
            # This record, and those still in the writer's buffer, which closing it cannot save.
            self._failed(error, dropped=1 + self._unflushed)

    def _next_file(self) -> None:
        self._close_file()
        path = f"{self.prefix}-{self._started}-{self._sequence:05d}.tfrecord"
        self._sequence += 1
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = TFRecordFile(path)
        self._written = 0
        log.info("request log of %s: writing %s", self.model_name, os.path.basename(path))

    def _flush(self) -> None:
        try:
            self._writer.flush()
            self._unflushed = 0
        except Exception as error:  # noqa: BLE001  (a disk that filled up since the last flush)
            # The records written since the last flush may be lost with the buffer: counted as dropped
            # (they were counted as written too: a failed flush cannot say which of them reached the disk).
            self._failed(error, dropped=self._unflushed)

    def _failed(self, error: Exception, dropped: int) -> None:
        """A write or flush failed (a full disk, a folder gone): warn, count the records lost,
        drop records for RETRY_SECONDS, then try a new file."""
        log.warning("request log of %s: cannot write to %s*: %s; dropping records for %.0f s",
                    self.model_name, self.prefix, str(error).splitlines()[0] if str(error) else error, RETRY_SECONDS)
        for _ in range(dropped):
            self._on_drop(self.model_name, "write_failed")
        self._failed_until = time.monotonic() + RETRY_SECONDS
        self._unflushed = 0
        self._close_file()

    def _close_file(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001  (what was written before stays readable)
                pass
            self._writer = None
