"""`zoo serve`'s command-line flags: TF Serving's names, defaults and meanings.

Kept apart from the server so that building the `zoo` parser does not import TensorFlow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
# TF Serving's default is 0 (as many as cores). The zoo's models are chains of layers with no
# independent ops to overlap, and a second inter-op thread only adds hand-offs: one thread
# took a 1-row gRPC Predict from ~3.3 ms to ~1.9 ms p50 on 2 cores (docs/OPTIMIZATIONS.md).
INTER_OP_THREADS = 1


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """TF Serving's flag names (both --flag=value and --flag value work)."""
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port (default 8501; 0 disables REST)")
    parser.add_argument("--model_config_file", type=Path, help="a ModelServerConfig text file")
    parser.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0,
                        help="re-read the config file this often (0: never)")
    parser.add_argument("--model_name", default="default", help="with --model_base_path: one model")
    parser.add_argument("--model_base_path", help="the folder holding one model's versions")
    parser.add_argument("--enable_batching", type=_flag_bool, nargs="?", const=True, default=False)
    parser.add_argument("--batching_parameters_file", type=Path, help="a BatchingParameters text file")
    parser.add_argument("--monitoring_config_file", type=Path, help="a MonitoringConfig text file")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="how often to look for new versions (0: once, at start)")
    parser.add_argument("--rest_api_timeout_in_ms", type=int, default=30000)
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                        help="threads within one op, e.g. a large matmul (0: TensorFlow picks)")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=INTER_OP_THREADS,
                        help=f"threads running independent ops (0: TensorFlow picks; zoo's default "
                             f"{INTER_OP_THREADS}, see docs/OPTIMIZATIONS.md)")
    parser.add_argument("--bind_address", default="127.0.0.1",
                        help="zoo only: the address to listen on (TF Serving listens on all)")
    parser.add_argument("--rest_api_max_body_bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help="zoo only: the largest REST request body accepted")


def _flag_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")
