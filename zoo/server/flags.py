"""`zoo serve`'s command-line flags: TF Serving's names, defaults and meanings.

Kept apart from the server so that building the `zoo` parser does not import TensorFlow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
# The REST edge's defaults (zoo.server.edge.http_server uses them; kept here so that building the
# parser imports neither uvicorn nor TensorFlow).
HEADER_SECONDS = 30.0  # request line and headers (nginx's client_header_timeout is 60 s)
IDLE_SECONDS = 75  # a keep-alive connection with no request (nginx's keepalive_timeout)
MAX_CONNECTIONS = 10_000  # beyond it, a new request is answered 503 (uvicorn's limit_concurrency)
DRAIN_SECONDS = 30.0  # how long a stop waits for requests in flight (Kubernetes' grace period)
DEFAULT_MAX_TENSOR_ELEMENTS = 1 << 24  # 16.8M values a request: 64 MB of float32, 128 MB of doubles
# TF Serving's default is 0 (as many as cores). The zoo's models are chains of layers with no
# independent ops to overlap, and a second inter-op thread only adds hand-offs: one thread
# took a 1-row gRPC Predict from ~3.3 ms to ~1.9 ms p50 on 2 cores (docs/OPTIMIZATIONS.md).
INTER_OP_THREADS = 1


# TF Serving defaults this to four threads a core. Here a request waiting for its batch holds
# a thread, so with 8 threads on 2 cores no batch could hold more than 8 requests.
GRPC_MAX_THREADS = 32
# TF Serving's REST default is four threads a core. The zoo's REST threads run the model calls
# (the event loop only reads and writes), and a request waiting for its batch holds one, so
# they are sized as the gRPC threads are.
REST_THREADS = 32


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """TF Serving's flag names (both --flag=value and --flag value work)."""
    flag = {"type": _flag_bool, "nargs": "?", "const": True}
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500; 0 disables it)")
    parser.add_argument("--grpc_socket_path", default="",
                        help="also (or only) serve gRPC on this Unix socket")
    parser.add_argument("--grpc_channel_arguments", default="",
                        help="gRPC server arguments, e.g. grpc.max_connection_age_ms=2000,grpc.keepalive_time_ms=10000")
    parser.add_argument("--grpc_max_threads", type=int, default=GRPC_MAX_THREADS,
                        help=f"threads serving gRPC calls (zoo default {GRPC_MAX_THREADS}; TF Serving: 4 a core)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port (default 8501; 0 disables REST)")
    parser.add_argument("--model_config_file", type=Path, help="a ModelServerConfig text file")
    parser.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0,
                        help="re-read the config file this often (0: never)")
    parser.add_argument("--model_name", default="default", help="with --model_base_path: one model")
    parser.add_argument("--model_base_path", help="the folder holding one model's versions")
    parser.add_argument("--enable_batching", default=False, **flag)
    parser.add_argument("--batching_parameters_file", type=Path, help="a BatchingParameters text file")
    parser.add_argument("--monitoring_config_file", type=Path, help="a MonitoringConfig text file")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="how often to look for new versions (0: once, at start)")
    parser.add_argument("--rest_api_timeout_in_ms", type=int, default=30000)
    parser.add_argument("--rest_api_enable_cors_support", default=False, **flag,
                        help="add CORS headers (Access-Control-Allow-Origin: *) to REST answers")
    parser.add_argument("--allow_version_labels_for_unavailable_models", default=False, **flag,
                        help="let a new label point at a version that is not loaded yet (e.g. at start)")
    parser.add_argument("--enable_signature_method_name_check", default=False, **flag,
                        help="Classify/Regress/Predict only on signatures of their method name")
    parser.add_argument("--enable_serialization_as_tensor_content", default=False, **flag,
                        help="gRPC Predict answers with tensor_content instead of typed value fields")
    parser.add_argument("--saved_model_tags", default="serve", help="the meta graph's tags, comma-separated")
    parser.add_argument("--enable_model_warmup", default=True, **flag,
                        help="replay assets.extra/tf_serving_warmup_requests before a version serves")
    parser.add_argument("--num_request_iterations_for_warmup", type=int, default=1,
                        help="how often each warm-up request is replayed")
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                        help="threads within one op, e.g. a large matmul (0: TensorFlow picks)")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=INTER_OP_THREADS,
                        help=f"threads running independent ops (0: TensorFlow picks; zoo's default "
                             f"{INTER_OP_THREADS}, see docs/OPTIMIZATIONS.md)")
    parser.add_argument("--bind_address", default="127.0.0.1",
                        help="zoo only: the address to listen on (TF Serving listens on all)")
    parser.add_argument("--max_num_load_retries", type=int, default=5,
                        help="times a version that failed to load is tried again (and whenever its files change)")
    parser.add_argument("--load_retry_interval_micros", type=int, default=60 * 1000 * 1000,
                        help="the wait between those tries")
    parser.add_argument("--max_tensor_elements", type=_positive_int, default=DEFAULT_MAX_TENSOR_ELEMENTS,
                        help="zoo only: the most elements a gRPC Predict request's inputs may declare, all "
                             "together (also at most 16 a byte of the request: a shape declared and not sent)")
    parser.add_argument("--rest_api_max_body_bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help="zoo only: the largest REST request body accepted")
    parser.add_argument("--rest_api_num_threads", type=int, default=0,
                        help=f"threads running REST requests' model calls (0: zoo default {REST_THREADS}; "
                             "TF Serving: 4 a core)")
    parser.add_argument("--ssl_config_file", type=Path,
                        help="gRPC TLS: an SSLConfig text proto (server_key, server_cert, custom_ca, client_verify: "
                             "true for mutual TLS), as TF Serving reads it")
    parser.add_argument("--enable_per_model_batching_parameters", default=False, **flag,
                        help="accepted; the zoo batches every model with --batching_parameters_file (logged)")
    parser.add_argument("--thread_pool_factory_config_file", type=Path,
                        help="accepted; the zoo runs sessions on TensorFlow's own thread pools (logged)")
    tls = parser.add_argument_group("REST TLS (zoo only; TF Serving's REST port has none)")
    tls.add_argument("--rest_api_ssl_cert_file", type=Path, help="PEM certificate chain: serve REST over HTTPS")
    tls.add_argument("--rest_api_ssl_key_file", type=Path, help="PEM private key of that certificate")
    tls.add_argument("--rest_api_ssl_client_ca_file", type=Path,
                     help="mutual TLS: clients must present a certificate signed by this CA (PEM)")
    edge = parser.add_argument_group("REST connections (zoo only)")
    edge.add_argument("--rest_api_header_timeout_seconds", type=float, default=HEADER_SECONDS,
                      help=f"a request's line and headers must arrive within this time (default {HEADER_SECONDS:g}); "
                           "its body then at 64 KB/s or faster")
    edge.add_argument("--rest_api_idle_timeout_seconds", type=float, default=IDLE_SECONDS,
                      help=f"a keep-alive connection with no request is closed after this time "
                           f"(default {IDLE_SECONDS})")
    edge.add_argument("--rest_api_max_connections", type=_positive_int, default=MAX_CONNECTIONS,
                      help=f"connections served at once; a request on one more is answered 503 "
                           f"(default {MAX_CONNECTIONS})")
    parser.add_argument("--request_memory_budget_bytes", type=int, default=0,
                        help="zoo only: memory that requests in flight may take while decoded, both ports "
                             "together; more wait up to 1 s, then 503 / RESOURCE_EXHAUSTED (0: a quarter of "
                             "this machine's or container's memory)")
    parser.add_argument("--grpc_health_port", type=int, default=0,
                        help="zoo only: also serve grpc.health.v1 alone, in plaintext, on this port (for "
                             "Kubernetes' gRPC probes, which speak no TLS; 0: not)")
    parser.add_argument("--shutdown_grace_seconds", type=float, default=DRAIN_SECONDS,
                        help=f"zoo only: on SIGTERM, how long requests in flight get to finish "
                             f"(default {DRAIN_SECONDS:g}, Kubernetes' grace period)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _flag_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")
