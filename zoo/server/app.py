"""`zoo serve`: the embedded model server, with TensorFlow Serving's flags.

    zoo serve --model_config_file=models/models.config          # every exported model
    zoo serve --model_name=dnn-regressor --model_base_path=models/dnn-regressor

gRPC on --port (8500) and REST on --rest_api_port (8501; 0 disables REST), bound to
127.0.0.1 unless --bind_address says otherwise.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import signal
import threading
from pathlib import Path

from zoo.errors import ConfigError
from zoo.server import config as server_config
from zoo.server.edge import tls
from zoo.server.edge.grpc_server import GrpcOptions, parse_channel_arguments, start_grpc_server, start_health_server
from zoo.server.edge.health import HealthReporter
from zoo.server.edge.http_server import DRAIN_SECONDS, HttpLimits, HttpServer, TlsFiles
from zoo.server.edge.memory_budget import MemoryBudget, default_budget_bytes
from zoo.server.edge.rest_app import RestApp, is_loopback
from zoo.server.flags import DEFAULT_MAX_BODY_BYTES, REST_THREADS
from zoo.server.frontends.rest_v1 import TfServingRest
from zoo.server.frontends.rest_v2 import OpenInferenceRest
from zoo.server.plane.batching import Batcher
from zoo.server.plane.data_plane import DataPlane
from zoo.server.plane.errors import ServingError
from zoo.server.plane.manager import LoadOptions, ModelManager

log = logging.getLogger("zoo.server")


class ZooServer:
    """The manager, the data plane, the four front ends behind the REST and gRPC edges, and
    health, started and stopped together.

    Args:
        config: the ModelServerConfig to serve.
        config_dir: the config file's folder (for container base paths), if from a file.
        host: the address to bind.
        grpc_port: 0 for any free port; None for no TCP gRPC port (a socket path only).
        rest_port: 0 for any free port; None for no REST API.
        poll_seconds: --file_system_poll_wait_seconds.
        batching: BatchingParameters, or None for no batching.
        metrics_path: the Prometheus path on the REST port, or None.
        rest_timeout_ms: --rest_api_timeout_in_ms (0: none).
        max_body_bytes: the largest REST body accepted.
        config_file: re-read every `config_poll_seconds` when that is > 0.
        load_options: how versions are loaded (tags, threads, warm-up, labels, method names).
        grpc_options: the gRPC flags (socket path, channel arguments, threads, tensor content);
            its host and port are taken from `host` and `grpc_port`.
        cors: --rest_api_enable_cors_support.
        rest_threads: --rest_api_num_threads, the threads REST requests run their model calls on.
        rest_tls: REST over TLS (and mutual TLS with a client CA); None for plain HTTP.
        http_limits: REST deadlines and connection limit.
        drain_seconds: how long `stop` waits for requests in flight.
        health_port: also serve gRPC health checking alone, in plaintext, on this port (0: any
            free port; None: not). Kubernetes' gRPC probes speak no TLS, so a server whose
            gRPC port takes only TLS clients is probed here; no model data passes through it.
        request_memory_budget: bytes that requests in flight may take to decode, both ports
            together (None: a quarter of the memory this process may use; see memory_budget).
    """

    def __init__(self, config, *, config_dir: Path | None = None, host: str = "127.0.0.1",
                 grpc_port: int | None = 8500, rest_port: int | None = 8501, poll_seconds: float = 1.0,
                 batching=None, metrics_path: str | None = None, rest_timeout_ms: int = 0,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, config_file: Path | None = None,
                 config_poll_seconds: float = 0.0, load_options: LoadOptions | None = None,
                 grpc_options: GrpcOptions | None = None, cors: bool = False, rest_threads: int = REST_THREADS,
                 rest_tls: TlsFiles | None = None, http_limits: HttpLimits | None = None,
                 drain_seconds: float = DRAIN_SECONDS, health_port: int | None = None,
                 request_memory_budget: int | None = None):
        self.manager = ModelManager(config, config_dir=config_dir, poll_seconds=poll_seconds,
                                    options=load_options)
        self.plane = DataPlane(self.manager, batcher=Batcher(batching) if batching is not None else None)
        self.health = HealthReporter(self.manager)
        self.budget = MemoryBudget(request_memory_budget or default_budget_bytes())
        self.host = host
        self._grpc_options = dataclasses.replace(grpc_options or GrpcOptions(), host=host, port=grpc_port)
        self._rest_port = rest_port
        self._rest_executor = concurrent.futures.ThreadPoolExecutor(rest_threads, thread_name_prefix="zoo-rest")
        front_ends = [TfServingRest(self.plane),
                      OpenInferenceRest(self.plane, max_elements=self._grpc_options.max_tensor_elements)]
        self._rest_api = RestApp(front_ends, self._rest_executor, self.plane.metrics, timeout_ms=rest_timeout_ms,
                                 max_body_bytes=max_body_bytes, metrics_path=metrics_path, cors=cors,
                                 check_host=is_loopback(host), budget=self.budget)
        self._rest_edge = {"tls": rest_tls, "limits": http_limits, "drain_seconds": drain_seconds}
        self._drain_seconds = drain_seconds
        self._config_file, self._config_poll_seconds = config_file, config_poll_seconds
        self._stopping = threading.Event()
        self._health_port = health_port
        self.grpc_server = self.rest_server = self.health_server = None
        self.grpc_port = self.rest_port = self.health_port = None

    def start(self) -> ZooServer:
        """Load the models and start the gRPC and REST servers; returns self."""
        self.manager.start()
        self.health.start()
        self.grpc_server, self.grpc_port = start_grpc_server(self.plane, self._grpc_options, self.health.servicer,
                                                             self.budget)
        if self._health_port is not None:
            self.health_server, self.health_port = start_health_server(self.health.servicer, self.host,
                                                                       self._health_port)
        if self._rest_port is not None:
            self.rest_server = HttpServer(self._rest_api, self.host, self._rest_port, **self._rest_edge)
            self.rest_server.start()
            self.rest_port = self.rest_server.port
        if self._config_file is not None and self._config_poll_seconds > 0:
            threading.Thread(target=self._watch_config, name="zoo-config-poller", daemon=True).start()
        return self

    def stop(self) -> None:
        """Drain, then unload: health says NOT_SERVING, both ports stop taking new calls,
        every request already received is answered (up to the drain period), the models go."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.health.drain()  # also ends the health Watch streams, which would hold the grace period
        grpc_stopped = self.grpc_server.stop(grace=self._drain_seconds) if self.grpc_server is not None else None
        if self.health_server is not None:
            self.health_server.stop(grace=None)
        if self.rest_server is not None:
            self.rest_server.stop()
        if grpc_stopped is not None:
            grpc_stopped.wait()
        self._rest_executor.shutdown(wait=True)
        self.plane.close()

    def _watch_config(self) -> None:
        """Re-read the config file (--model_config_file_poll_wait_seconds). A refused config
        is tried again at the next poll, since what refused it (a label on a version that
        was still loading) may have changed; the config before it serves meanwhile."""
        applied = self._config_file.read_text(encoding="utf-8")
        failed = None
        while not self._stopping.wait(self._config_poll_seconds):
            try:
                text = self._config_file.read_text(encoding="utf-8")
                if text == applied:
                    continue
                self.manager.reload(server_config.load_model_config_file(self._config_file))
                log.info("reloaded %s", self._config_file)
                applied, failed = text, None
            except (OSError, ConfigError, ServingError) as error:
                message = getattr(error, "message", None) or str(error)
                if message != failed:  # once per new failure, not once a poll
                    log.error("not reloading %s: %s", self._config_file, message)
                    failed = message


def session_config(intra_op: int, inter_op: int):
    """The ConfigProto every version's session runs with (TF Serving's
    --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism; 0: TensorFlow picks)."""
    from tensorflow.core.protobuf import config_pb2

    return config_pb2.ConfigProto(intra_op_parallelism_threads=intra_op, inter_op_parallelism_threads=inter_op)


def set_tensorflow_threads(intra_op: int, inter_op: int) -> None:
    """TensorFlow's eager thread pools (warm-up parsing, tf.data); only possible before
    TensorFlow runs its first op. The sessions that serve take `session_config`."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as error:  # the runtime already started (a server inside another program)
        log.warning("TensorFlow thread pools left as they are: %s", error)


def server_from_args(args) -> ZooServer:
    """A ZooServer configured from `zoo serve`'s (TF Serving's) flags."""
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
    if not args.port and not args.grpc_socket_path:
        raise ConfigError("At least one of --port or --grpc_socket_path must be set.")
    batching = None
    if args.enable_batching:
        batching = server_config.load_batching_parameters(args.batching_parameters_file)
    elif args.batching_parameters_file:
        raise ConfigError("--batching_parameters_file needs --enable_batching")
    monitoring = server_config.load_monitoring_config(args.monitoring_config_file)
    prometheus = monitoring.prometheus_config
    metrics_path = (prometheus.path or "/monitoring/prometheus/metrics") if prometheus.enable else None
    load_options = LoadOptions(
        tags=tuple(tag.strip() for tag in args.saved_model_tags.split(",") if tag.strip()),
        session_config=session_config(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism),
        check_method_names=args.enable_signature_method_name_check,
        warmup=args.enable_model_warmup,
        warmup_iterations=args.num_request_iterations_for_warmup,
        allow_unavailable_labels=args.allow_version_labels_for_unavailable_models,
        max_load_retries=args.max_num_load_retries,
        load_retry_seconds=args.load_retry_interval_micros / 1e6,
    )
    grpc_options = GrpcOptions(
        socket_path=args.grpc_socket_path, channel_arguments=args.grpc_channel_arguments,
        max_threads=args.grpc_max_threads, tensor_content=args.enable_serialization_as_tensor_content,
        max_tensor_elements=args.max_tensor_elements,
        ssl_config=tls.load_ssl_config(args.ssl_config_file) if args.ssl_config_file else None,
    )
    parse_channel_arguments(args.grpc_channel_arguments)  # a malformed list fails before anything loads
    log_substituted_flags(args)
    return ZooServer(
        config, config_dir=config_dir, host=args.bind_address, grpc_port=args.port or None,
        rest_port=args.rest_api_port or None, poll_seconds=args.file_system_poll_wait_seconds,
        batching=batching, metrics_path=metrics_path, rest_timeout_ms=args.rest_api_timeout_in_ms,
        max_body_bytes=args.rest_api_max_body_bytes, config_file=args.model_config_file,
        config_poll_seconds=args.model_config_file_poll_wait_seconds, load_options=load_options,
        grpc_options=grpc_options, cors=args.rest_api_enable_cors_support,
        rest_threads=args.rest_api_num_threads or REST_THREADS, rest_tls=rest_tls_from_args(args),
        http_limits=HttpLimits(header_seconds=args.rest_api_header_timeout_seconds,
                               idle_seconds=args.rest_api_idle_timeout_seconds,
                               max_connections=args.rest_api_max_connections),
        drain_seconds=args.shutdown_grace_seconds,
        health_port=args.grpc_health_port or None,
        request_memory_budget=args.request_memory_budget_bytes or None,
    )


def rest_tls_from_args(args) -> TlsFiles | None:
    """REST TLS from the zoo's --rest_api_ssl_* flags; None when they are not given."""
    cert, key, client_ca = args.rest_api_ssl_cert_file, args.rest_api_ssl_key_file, args.rest_api_ssl_client_ca_file
    if not cert and not key:
        if client_ca:
            raise ConfigError("--rest_api_ssl_client_ca_file needs --rest_api_ssl_cert_file and "
                              "--rest_api_ssl_key_file")
        return None
    if not (cert and key):
        raise ConfigError("REST TLS needs both --rest_api_ssl_cert_file and --rest_api_ssl_key_file")
    files = TlsFiles(str(cert), str(key), str(client_ca) if client_ca else None)
    files.context()  # an unreadable or mismatched pair fails here, before any model loads
    return files


def log_substituted_flags(args) -> None:
    """TF Serving flags the zoo accepts but serves differently: say so once, at start."""
    if args.enable_per_model_batching_parameters:
        log.warning("--enable_per_model_batching_parameters: the zoo batches every model with "
                    "--batching_parameters_file; a version's assets.extra/batching_params.pbtxt is not read")
    if args.thread_pool_factory_config_file:
        log.warning("--thread_pool_factory_config_file %s: the zoo runs every session on TensorFlow's own pools "
                    "(sized by --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism); "
                    "the file is not read", args.thread_pool_factory_config_file)


def exposure_warning(bind_address: str) -> str | None:
    """The warning for a server that listens beyond this machine, or None on loopback."""
    if is_loopback(bind_address):
        return None
    return (f"listening on {bind_address}: anyone who reaches these ports can load, unload and repoint models "
            "(HandleReloadConfigRequest) and run any model; the model-management API has no "
            "authentication, as in TF Serving. Keep the ports behind a network boundary you control.")


def serve(args) -> int:
    """Run `zoo serve` until SIGINT or SIGTERM; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if warning := exposure_warning(args.bind_address):
        log.warning(warning)
    set_tensorflow_threads(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    try:
        server = server_from_args(args).start()
    except ServingError as error:  # a config TF Serving would refuse at start, in its words
        raise ConfigError(error.message) from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    grpc_where = [f"{server.host}:{server.grpc_port}"] if server.grpc_port else []
    grpc_where += [f"unix:{args.grpc_socket_path}"] if args.grpc_socket_path else []
    rest = f"REST on http://{server.host}:{server.rest_port}" if server.rest_port else "REST disabled"
    log.info("serving %s: gRPC on %s, %s", ", ".join(server.manager.model_names()), " and ".join(grpc_where), rest)
    stop.wait()
    log.info("draining: health NOT_SERVING, answering the requests in flight (up to %.0f s)",
             args.shutdown_grace_seconds)
    server.stop()
    log.info("stopped")
    return 0
