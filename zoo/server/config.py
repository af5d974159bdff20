"""Server configuration from TF Serving's flags and text-proto files.

`--model_config_file` holds a `ModelServerConfig`; `--model_name` + `--model_base_path`
describe a single model; `--batching_parameters_file` a `BatchingParameters`;
`--monitoring_config_file` a `MonitoringConfig`. All parse exactly as TF Serving parses
them, and a bad file is reported with the file, line and field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from zoo.errors import ConfigError
from zoo.protocol.names import CONTAINER_MODELS_ROOT
from zoo.server.protos import BatchingParameters, MonitoringConfig

log = logging.getLogger("zoo.server")
# CONTAINER_MODELS_ROOT is where the TF Serving container of docker-compose.yml sees ./models.
# A config file written for it (models/models.config) names base paths under this root;
# `zoo serve` reading the same file maps them to the config file's own folder.


# Fields of TF Serving's config protos that zoo serve parses but does not act on, with what
# it does instead. A file (or a HandleReloadConfigRequest) that sets one is refused, naming the
# field: a setting that silently does nothing is worse than a refusal.
UNHONOURED_FIELDS = {
    "tensorflow.serving.LoggingConfig": {
        "custom_logging_config": "the zoo's log collector takes no custom config",
    },
    "tensorflow.serving.SamplingConfig": {
        "per_task_sampling_configs": "one sampling_rate for every task",
        "attributes": "requests are sampled at sampling_rate, whatever their attributes",
    },
    "tensorflow.serving.BatchingParameters": {
        "thread_pool_name": "every batch runs on the zoo's batch threads",
        "allowed_batch_sizes": "batches run at their own size, not padded to allowed sizes",
        "pad_variable_length_inputs": "inputs are not padded; requests in one batch need equal shapes",
    },
}


def unhonoured_field(message, prefix: str = "") -> str | None:
    """The first field set in `message` (or in a message inside it) that zoo serve does not
    honour, as "path: why", or None."""
    refused = UNHONOURED_FIELDS.get(message.DESCRIPTOR.full_name, {})
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.name in refused:
            return f"{path}: {refused[field.name]}"
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:  # version_labels: plain values, nothing inside
            children = list(value.values()) if field.message_type.fields_by_name["value"].message_type else []
        elif field.label == field.LABEL_REPEATED:
            children = list(value)
        else:
            children = [value]
        for index, child in enumerate(children):
            repeated = field.label == field.LABEL_REPEATED
            found = unhonoured_field(child, f"{path}[{index}]." if repeated else f"{path}.")
            if found:
                return found
    return None


def refuse_unhonoured(message, path) -> None:
    """Raise a ConfigError naming a field that zoo serve would not honour (see above)."""
    found = unhonoured_field(message)
    if found:
        raise ConfigError(f"{path}: not honoured by zoo serve, so refused rather than ignored: {found}")


def parse_text_proto(path: Path, message):
    """Parse a text-format proto file into `message`, or raise ConfigError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as error:
        # TF Serving's words (protobuf's TextFormat error collector), then the file.
        raise ConfigError(f"Error parsing text-format {message.DESCRIPTOR.full_name}: {error} ({path})") from None


def load_model_config_file(path: Path) -> model_server_config_pb2.ModelServerConfig:
    """Parse a models.config text proto, with TF Serving's error text on failure."""
    config = parse_text_proto(path, model_server_config_pb2.ModelServerConfig())
    refuse_unhonoured(config, path)
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{path}: only model_config_list is supported (not custom_model_config)")
    names = [entry.name for entry in config.model_config_list.config]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{path}: model names must be unique, repeated: {', '.join(duplicates)}")
    for entry in config.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise ConfigError(f"{path}: every config needs a name and a base_path")
        if entry.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{path}: model '{entry.name}' has platform '{entry.model_platform}'; "
                              "only tensorflow is served")
    return config


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """The config `--model_name` and `--model_base_path` stand for."""
    config = model_server_config_pb2.ModelServerConfig()
    entry = config.model_config_list.config.add()
    entry.name, entry.base_path, entry.model_platform = name, base_path, "tensorflow"
    return config


def write_model_config_file(path: Path, base_paths: Mapping[str, str | Path]) -> Path:
    """Write a --model_config_file serving each named model from its base path."""
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.SetInParent()  # an empty list is still a list (TF Serving serves nothing)
    for name, base_path in base_paths.items():
        config.model_config_list.config.add(name=name, base_path=str(base_path), model_platform="tensorflow")
    Path(path).write_text(text_format.MessageToString(config), encoding="utf-8")
    return Path(path)


def load_batching_parameters(path: Path | None):
    """The batching file's parameters, with TF Serving's defaults for what it leaves out."""
    parameters = BatchingParameters() if path is None else parse_text_proto(path, BatchingParameters())
    refuse_unhonoured(parameters, path)
    defaults = {"max_batch_size": 1000, "batch_timeout_micros": 0, "max_enqueued_batches": 10,
                "num_batch_threads": 4}  # BasicBatchScheduler's defaults in TF Serving
    for field, value in defaults.items():
        if not parameters.HasField(field):
            getattr(parameters, field).value = value
    if parameters.max_batch_size.value < 1 or parameters.num_batch_threads.value < 1:
        raise ConfigError(f"{path}: max_batch_size and num_batch_threads must be >= 1")
    if parameters.HasField("max_execution_batch_size") and not (
        1 <= parameters.max_execution_batch_size.value <= parameters.max_batch_size.value
    ):
        raise ConfigError(f"{path}: max_execution_batch_size must be between 1 and max_batch_size")
    return parameters


def load_monitoring_config(path: Path | None):
    """The Prometheus settings from `--monitoring_config_file`, or None."""
    return MonitoringConfig() if path is None else parse_text_proto(path, MonitoringConfig())


def resolve_base_path(base_path: str, config_dir: Path | None) -> Path:
    """Where a model's versions are on this machine.

    A base path that exists is used as it is (relative ones from the working directory, as
    TF Serving does). A container path under /models that does not exist here is looked up
    in the config file's folder, which is what docker-compose mounts at /models.
    """
    path = Path(base_path)
    if path.exists() or config_dir is None:
        return path
    root = Path(CONTAINER_MODELS_ROOT)
    if path.is_absolute() and path.is_relative_to(root):
        local = config_dir / path.relative_to(root)
        log.info("base path %s is the container's; serving it from %s", base_path, local)
        return local
    return path
