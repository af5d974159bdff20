"""`zoo serve`: the embedded model server, with TensorFlow Serving's flags.

    zoo serve --model_config_file=models/models.config          # every exported model
    zoo serve --model_name=dnn-regressor --model_base_path=models/dnn-regressor

gRPC on --port (8500) and REST on --rest_api_port (8501; 0 disables REST), bound to
127.0.0.1 unless --bind_address says otherwise.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from zoo.errors import ConfigError
from zoo.server import config as server_config
from zoo.server.batching import Batcher
from zoo.server.core import ServingCore
from zoo.server.grpc_api import start_grpc_server
from zoo.server.manager import ModelManager
from zoo.server.flags import DEFAULT_MAX_BODY_BYTES
from zoo.server.rest import RestServer

log = logging.getLogger("zoo.server")


class ZooServer:
    """The manager, the serving core and both front ends, started and stopped together.

    Args:
        config: the ModelServerConfig to serve.
        config_dir: the config file's folder (for container base paths), if from a file.
        host: the address to bind.
        grpc_port: 0 for any free port.
        rest_port: 0 for any free port; None for no REST API.
        poll_seconds: --file_system_poll_wait_seconds.
        batching: BatchingParameters, or None for no batching.
        metrics_path: the Prometheus path on the REST port, or None.
        rest_timeout_ms: --rest_api_timeout_in_ms (0: none).
        max_body_bytes: the largest REST body accepted.
        config_file: re-read every `config_poll_seconds` when that is > 0.
    """

    def __init__(self, config, *, config_dir: Path | None = None, host: str = "127.0.0.1",
                 grpc_port: int = 8500, rest_port: int | None = 8501, poll_seconds: float = 1.0,
                 batching=None, metrics_path: str | None = None, rest_timeout_ms: int = 0,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, config_file: Path | None = None,
                 config_poll_seconds: float = 0.0):
        self.manager = ModelManager(config, config_dir=config_dir, poll_seconds=poll_seconds)
        self.core = ServingCore(self.manager, batcher=Batcher(batching) if batching is not None else None)
        self.host = host
        self._grpc_port, self._rest_port = grpc_port, rest_port
        self._rest_options = {"timeout_ms": rest_timeout_ms, "max_body_bytes": max_body_bytes,
                              "metrics_path": metrics_path}
        self._config_file, self._config_poll_seconds = config_file, config_poll_seconds
        self._stopping = threading.Event()
        self.grpc_server = self.rest_server = None
        self.grpc_port = self.rest_port = None

    def start(self) -> ZooServer:
        self.manager.start()
        self.grpc_server, self.grpc_port = start_grpc_server(self.core, self.host, self._grpc_port)
        if self._rest_port is not None:
            self.rest_server = RestServer(self.core, self.host, self._rest_port, **self._rest_options)
            self.rest_server.start()
            self.rest_port = self.rest_server.port
        if self._config_file is not None and self._config_poll_seconds > 0:
            threading.Thread(target=self._watch_config, name="zoo-config-poller", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self.rest_server is not None:
            self.rest_server.stop()
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=2).wait()
        self.core.close()

    def _watch_config(self) -> None:
        last = self._config_file.read_text(encoding="utf-8")
        while not self._stopping.wait(self._config_poll_seconds):
            try:
                text = self._config_file.read_text(encoding="utf-8")
                if text != last:
                    self.manager.reload(server_config.load_model_config_file(self._config_file))
                    log.info("reloaded %s", self._config_file)
                    last = text
            except (OSError, ConfigError) as error:
                log.error("not reloading %s: %s", self._config_file, error)


def set_tensorflow_threads(intra_op: int, inter_op: int) -> None:
    """TensorFlow's thread pools; only possible before TensorFlow runs its first op."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as error:  # the runtime already started (a server inside another program)
        log.warning("TensorFlow thread pools left as they are: %s", error)


def server_from_args(args) -> ZooServer:
    if args.model_config_file and args.model_base_path:
        raise ConfigError("give either --model_config_file or --model_base_path, not both")
    if args.model_config_file:
        config = server_config.load_model_config_file(args.model_config_file)
        config_dir = args.model_config_file.resolve().parent
    elif args.model_base_path:
        config = server_config.single_model_config(args.model_name, args.model_base_path)
        config_dir = None
    else:
        raise ConfigError("nothing to serve: give --model_config_file, or --model_name and --model_base_path")
    batching = None
    if args.enable_batching:
        batching = server_config.load_batching_parameters(args.batching_parameters_file)
    elif args.batching_parameters_file:
        raise ConfigError("--batching_parameters_file needs --enable_batching")
    monitoring = server_config.load_monitoring_config(args.monitoring_config_file)
    prometheus = monitoring.prometheus_config
    metrics_path = (prometheus.path or "/monitoring/prometheus/metrics") if prometheus.enable else None
    return ZooServer(
        config, config_dir=config_dir, host=args.bind_address, grpc_port=args.port,
        rest_port=args.rest_api_port or None, poll_seconds=args.file_system_poll_wait_seconds,
        batching=batching, metrics_path=metrics_path, rest_timeout_ms=args.rest_api_timeout_in_ms,
        max_body_bytes=args.rest_api_max_body_bytes, config_file=args.model_config_file,
        config_poll_seconds=args.model_config_file_poll_wait_seconds,
    )


def serve(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    set_tensorflow_threads(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    server = server_from_args(args).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    rest = f"REST on http://{server.host}:{server.rest_port}" if server.rest_port else "REST disabled"
    log.info("serving %s: gRPC on %s:%d, %s", ", ".join(server.manager.model_names()),
             server.host, server.grpc_port, rest)
    stop.wait()
    log.info("shutting down")
    server.stop()
    return 0
