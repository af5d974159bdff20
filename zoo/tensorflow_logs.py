"""Keep TensorFlow's C++ start-up lines off the terminal of a CLI or a test run."""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without its C++ start-up lines (oneDNN notice, no CUDA driver).

    TensorFlow 2.21 writes those through absl before TF_CPP_MIN_LOG_LEVEL applies, so the
    only way to keep them off a CLI's stderr is to point file descriptor 2 elsewhere while
    it loads. Python exceptions are objects and still reach the user. A user who wants the
    chatter sets ZOO_TF_LOGS=1 (and TF_CPP_MIN_LOG_LEVEL as they like).
    """
    if "tensorflow" in sys.modules or os.environ.get("ZOO_TF_LOGS"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
