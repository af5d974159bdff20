"""The names the TensorFlow Serving API fixes, written once for export, server and client.

Signature keys and method names are the SignatureDef contract (tensorflow/serving/apis);
the warm-up path is where TF Serving looks for warm-up requests inside a SavedModel
(servables/tensorflow/saved_model_warmup_util.cc); `/models` is where docker-compose.yml
mounts the repository in the TF Serving container; the message limit is TF Serving's.
"""

from pathlib import Path

DEFAULT_SIGNATURE = "serving_default"
# The zoo's signatures for the Classify and Regress APIs (serialized tf.Examples in).
CLASSIFY_SIGNATURE = "classification"
REGRESS_SIGNATURE = "regression"

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"

SERVE_TAG = "serve"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
CONTAINER_MODELS_ROOT = "/models"
# As TF Serving: large batches must not hit gRPC's 4 MB default.
MAX_MESSAGE_BYTES = 2**31 - 1
