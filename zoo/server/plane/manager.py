"""The model manager: which versions of which models are loaded, kept as TF Serving keeps them.

For each configured model it lists the version folders under the base path (a folder whose
name reads as an integer, as TF Serving reads it: `00000123` is version 123, loaded from
`00000123/`), picks the versions its policy asks for (`latest {num_versions}`, `all`,
`specific`), loads the new ones (replaying their warm-up requests) and only then unloads
the ones no longer asked for, so a rollout never leaves a moment without a version to
serve. A version that fails to load is recorded, with its error, in the model status and
the log, and whatever was serving before keeps serving. It is tried again as soon as any
file in its folder changes (a copy the poller caught half-written, a fix in place), and
otherwise up to `max_load_retries` times, `load_retry_seconds` apart (TF Serving's
--max_num_load_retries and --load_retry_interval_micros).

Version labels map names such as `stable` to versions. As in TF Serving's ServerCore, a
config may only point a label at a version that is loaded now, unless
`--allow_version_labels_for_unavailable_models` (then a new label may point anywhere, but
an existing label still only moves to a loaded version). A config that breaks that rule is
refused whole, and the config before it stays in force.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import stat
import threading
import time
from pathlib import Path

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from zoo.protocol.names import SERVE_TAG
from zoo.repository import policy_versions, version_folders
from zoo.server.config import resolve_base_path, unhonoured_field
from zoo.server.plane.errors import Code, ServingError, invalid_argument, not_found
from zoo.server.plane.request_log import check_logging_config
from zoo.server.plane.servable import Servable
from zoo.server.plane.warmup import warm_up

log = logging.getLogger("zoo.server")
State = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """How versions are loaded: TF Serving's flags of the same names."""

    tags: tuple[str, ...] = (SERVE_TAG,)  # --saved_model_tags
    session_config: object = None  # a ConfigProto (--tensorflow_*_parallelism)
    check_method_names: bool = False  # --enable_signature_method_name_check
    warmup: bool = True  # --enable_model_warmup
    warmup_iterations: int = 1  # --num_request_iterations_for_warmup
    allow_unavailable_labels: bool = False  # --allow_version_labels_for_unavailable_models
    max_load_retries: int = 5  # --max_num_load_retries
    load_retry_seconds: float = 60.0  # --load_retry_interval_micros, in seconds


@dataclasses.dataclass
class VersionRecord:
    """What the manager knows about one version: its state, its error, its servable."""

    version: int
    state: int = State.START
    error: ServingError | None = None
    servable: Servable | None = None
    stamp: tuple = ()  # the folder's files (path, size, mtime) when it was last tried
    attempts: int = 0  # failed loads of these files
    failed_at: float = 0.0  # monotonic time of the last failure


@dataclasses.dataclass
class ModelEntry:
    """One configured model: its versions, labels and load state."""
    config: model_server_config_pb2.ModelConfig
    base_path: Path
    versions: dict[int, VersionRecord] = dataclasses.field(default_factory=dict)

    def available(self) -> dict[int, Servable]:
        """The versions loaded and serving, by number."""
        return {v: r.servable for v, r in self.versions.items() if r.state == State.AVAILABLE and r.servable}


class ModelManager:
    """Loads, serves and unloads versions for a `ModelServerConfig`.

    Args:
        config: the models to serve.
        config_dir: the config file's folder, for container base paths (see
            `resolve_base_path`); None for paths given on the command line.
        poll_seconds: how often to look for new versions; 0 looks once, at start.
        options: how versions are loaded and labels checked.

    Raises:
        ServingError: the config is refused (a repeated name, a platform other than
            tensorflow, a label on a version that is not loaded).
    """

    def __init__(self, config: model_server_config_pb2.ModelServerConfig, *,
                 config_dir: Path | None = None, poll_seconds: float = 1.0,
                 options: LoadOptions | None = None):
        self.options = options or LoadOptions()
        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()  # one synchronisation at a time
        self._models: dict[str, ModelEntry] = {}
        self._config_dir = config_dir
        self._poll_seconds = poll_seconds
        self._heap_changed = False  # a version loaded, failed or was dropped since the last freeze
        self._warned: set[str] = set()  # folders already warned about (once, not once a poll)
        self._base_path_faults: dict[str, str | None] = {}  # the last fault logged, by model
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._apply(config)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Load what the config asks for now, then keep polling in the background."""
        self.poll_once()
        if self._poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="zoo-model-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop polling the file system (waits up to 30 s for a poll under way)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _poll_loop(self) -> None:
        while not self._stopping.wait(self._poll_seconds):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001  (the poller must survive anything a disk does)
                log.exception("polling the model repository failed")

    def poll_once(self) -> None:
        """One file-system poll: load new versions, unload those the policy drops."""
        with self._sync_lock:
            with self._lock:
                entries = list(self._models.values())
            for entry in entries:
                self._sync(entry)
            if self._heap_changed:
                self._heap_changed = False
                freeze_heap()

    def reload(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Serve a new config: add, change and remove models (HandleReloadConfigRequest).

        Returns once the new config's versions are loaded (or failed), as TF Serving's
        ReloadConfig waits for new models. Raises ServingError if the config is refused.
        """
        with self._sync_lock:
            self._apply(config)
        self.poll_once()

    def _apply(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        if config.WhichOneof("config") != "model_config_list":
            raise invalid_argument(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                "Only ModelConfigList is currently supported"
            )
        validate_model_config_list(config.model_config_list)
        # Copies: the caller may go on changing its config object.
        wanted = {entry.name: _copy(entry) for entry in config.model_config_list.config}
        with self._lock:
            self._check_labels(wanted)
            for name in set(self._models) - set(wanted):
                log.info("model %s removed from the config: unloading it", name)
                del self._models[name]
                self._heap_changed = True
            for name, model_config in wanted.items():
                base_path = resolve_base_path(model_config.base_path, self._config_dir)
                if name in self._models and self._models[name].base_path == base_path:
                    self._models[name].config = model_config
                else:
                    self._models[name] = ModelEntry(model_config, base_path)

    def _check_labels(self, wanted: dict) -> None:
        """ServerCore::UpdateModelVersionLabelMap: labels point at loaded versions (caller
        holds the lock)."""
        for name, model_config in wanted.items():
            entry = self._models.get(name)
            available = entry.available() if entry is not None else {}
            current = dict(entry.config.version_labels) if entry is not None else {}
            for label, version in model_config.version_labels.items():
                allowed = self.options.allow_unavailable_labels and current.get(label, version) == version
                if version not in available and not allowed:
                    raise ServingError(
                        Code.FAILED_PRECONDITION,
                        f"Request to assign label to version {version} of model {name}, "
                        "which is not currently available for inference",
                    )

    # -- synchronising one model with its folder --------------------------------------

    def _sync(self, entry: ModelEntry) -> None:
        on_disk = self._versions_on_disk(entry)
        for version, record in list(entry.versions.items()):
            if version not in on_disk and record.state == State.AVAILABLE:
                # As TF Serving: a version no longer on the file system is no longer aspired.
                log.warning("%s version %d is gone from %s: unloading it", entry.config.name, version,
                            entry.base_path)
                self._unload(entry, record)
        aspired = policy_versions(entry.config, sorted(on_disk))
        for version in sorted(aspired, reverse=True):
            record = entry.versions.get(version)
            if record is not None and record.state == State.AVAILABLE:
                continue
            path = on_disk[version]
            stamp = content_stamp(path)
            if record is not None and record.error is not None and not self._retry_due(record, stamp):
                continue
            self._load(entry, version, path, stamp, record)
        if any(v in entry.available() for v in aspired):
            for version, record in list(entry.versions.items()):
                if version not in aspired and record.state == State.AVAILABLE:
                    self._unload(entry, record)

    def _retry_due(self, failed: VersionRecord, stamp: tuple) -> bool:
        """A failed version is tried again when its files changed, or on the retry schedule."""
        if failed.stamp != stamp:
            return True
        options = self.options
        return failed.attempts <= options.max_load_retries and \
            time.monotonic() - failed.failed_at >= options.load_retry_seconds

    def _versions_on_disk(self, entry: ModelEntry) -> dict[int, Path]:
        """Version folders under the base path that stay inside it: version -> folder. A base
        path that cannot be read is logged once per fault, naming the path and the cause."""
        base = entry.base_path
        fault = base_path_fault(entry.config.name, base)
        if fault != self._base_path_faults.get(entry.config.name):  # once a fault, not once a poll
            if fault is not None:
                log.error("%s", fault)
            else:
                log.info("the base path %s of model %s can be read again", base, entry.config.name)
            self._base_path_faults[entry.config.name] = fault
        if fault is not None:
            return {}
        root = os.path.realpath(base)
        found = {}
        for version, folder in version_folders(base).items():
            if os.path.commonpath([root, os.path.realpath(folder)]) != root:
                if str(folder) not in self._warned:  # once: the poller sees it every second
                    self._warned.add(str(folder))
                    log.warning("ignoring %s: it leads outside the base path %s", folder, base)
                continue
            found[version] = folder
        return found

    def _load(self, entry: ModelEntry, version: int, path: Path, stamp: tuple,
              failed: VersionRecord | None = None) -> None:
        name = entry.config.name
        record = VersionRecord(version, State.LOADING, stamp=stamp)
        if failed is not None and failed.stamp == stamp:
            record.attempts = failed.attempts  # the same files again: a scheduled retry
        self._heap_changed = True
        with self._lock:
            entry.versions[version] = record
        log.info("loading %s version %d from %s", name, version, path)
        options = self.options
        try:
            if not os.access(path, os.R_OK | os.X_OK):  # the loader would say the files do not exist
                raise PermissionError(f"permission denied reading {path}")
            servable = Servable(name, version, path, tags=options.tags, session_config=options.session_config,
                                check_method_names=options.check_method_names)
            replayed = warm_up(servable, options.warmup_iterations) if options.warmup else 0
        except Exception as error:  # noqa: BLE001  (any failure is a failed version)
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            record.state, record.error = State.END, ServingError(Code.UNKNOWN, message.splitlines()[0])
            record.attempts += 1
            record.failed_at = time.monotonic()
            with self._lock:
                entry.versions[version] = record
            log.error("failed to load %s version %d: %s", name, version, record.error.message)
            return
        record.state, record.servable = State.AVAILABLE, servable
        with self._lock:
            entry.versions[version] = record
        log.info("%s version %d is available (%d warm-up requests replayed)", name, version, replayed)

    def _unload(self, entry: ModelEntry, record: VersionRecord) -> None:
        # In-flight requests hold their own reference to the servable; dropping ours is safe.
        with self._lock:
            record.state, record.servable = State.END, None
        self._heap_changed = True
        log.info("unloaded %s version %d", entry.config.name, record.version)

    # -- lookups -------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        """The configured model names."""
        with self._lock:
            return sorted(self._models)

    def availability(self) -> dict[str, bool]:
        """Each configured model: whether it has a version available to serve."""
        with self._lock:
            return {name: bool(entry.available()) for name, entry in self._models.items()}

    def logging_config(self, name: str):
        """The model's LoggingConfig, or None when it logs nothing (or is not configured)."""
        with self._lock:
            entry = self._models.get(name)
            return entry.config.logging_config if entry is not None and entry.config.HasField("logging_config") \
                else None

    def is_configured(self, name: str) -> bool:
        """Whether the config names this model (a dict lookup: safe for any client string)."""
        return name in self._models

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable for a request: a version, a label, or the latest available."""
        if version is not None and label:
            raise invalid_argument(
                f"Both model version ({version}) and model version label ({label}) cannot be supplied."
            )
        with self._lock:
            entry = self._models.get(name)
            if label:
                labels = entry.config.version_labels if entry is not None else {}
                if label not in labels:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
                version = labels[label]
            available = entry.available() if entry is not None else {}
        if version is None:
            if not available:
                raise not_found(f"Servable not found for request: Latest({name})")
            return available[max(available)]
        if version not in available:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return available[version]

    def status(self, name: str, version: int | None = None):
        """GetModelStatus: the state (and error) of one version, or of every version."""
        response = get_model_status_pb2.GetModelStatusResponse()
        with self._lock:
            entry = self._models.get(name)
            records = sorted(entry.versions.values(), key=lambda r: -r.version) if entry else []
        if version is not None:
            records = [r for r in records if r.version == version]
            if not records:
                raise not_found(f"Could not find version {version} of model {name}")
        elif not records:
            raise not_found(f"Could not find any versions of model {name}")
        for record in records:
            status = response.model_version_status.add(version=record.version, state=record.state)
            status.status.SetInParent()  # TF Serving always reports a status, "OK" when fine
            if record.error is not None:
                status.status.error_code = record.error.code.value[0]
                status.status.error_message = record.error.message
        return response


def base_path_fault(name: str, base: Path) -> str | None:
    """Why a model's base path yields no versions, or None when it can be listed."""
    try:
        mode = os.stat(base).st_mode
    except FileNotFoundError:
        return f"Could not find base path {base} for servable {name}"  # TF Serving's words
    except OSError as error:
        return f"cannot read the base path {base} of model {name}: {error.strerror}"
    if not stat.S_ISDIR(mode):
        return f"the base path {base} of model {name} is not a directory"
    if not os.access(base, os.R_OK | os.X_OK):
        return f"cannot read the base path {base} of model {name}: permission denied"
    return None


def _copy(model_config):
    copy = model_server_config_pb2.ModelConfig()
    copy.CopyFrom(model_config)
    return copy


def validate_model_config_list(config_list) -> None:
    """ServerCore's checks of a ModelConfigList: unique names, the tensorflow platform."""
    seen = set()
    for model in config_list.config:
        if (unhonoured := unhonoured_field(model)) is not None:
            raise invalid_argument(f"model {model.name}: not honoured by zoo serve, so refused: {unhonoured}")
        if model.HasField("logging_config") and (why := check_logging_config(model.name, model.logging_config)):
            raise invalid_argument(why)
        if model.name in seen:
            raise invalid_argument(f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
        platform = model.model_platform
        if model.model_type:  # the deprecated enum: TENSORFLOW = 1
            if platform:
                raise invalid_argument(
                    "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                    f"ModelServerConfig::model_platform, model name is {model.name}"
                )
            if model.model_type != 1:
                raise invalid_argument(f"ModelServerConfig::model_type choice {model.model_type} not supported.")
            platform = "tensorflow"
        if not platform:
            raise invalid_argument(
                "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                f"ModelServerConfig::model_platform, model name is {model.name}"
            )
        if platform != "tensorflow":
            raise invalid_argument(f"Model {model.name} requests unsupported platform {platform}")


def freeze_heap() -> None:
    """Take every object alive now out of the garbage collector's sight (gc.freeze).

    A loaded SavedModel and TensorFlow itself are ~400,000 Python objects, and CPython's full
    collections walk all of them: a request that allocates many containers (a 4096x8x8 JSON
    body is ~33,000 lists) set one off every few requests, and REST requests of that size
    read p90 ~270 ms instead of ~35 ms. Called after versions load or unload: unfreezing
    first lets a dropped version's reference cycles be collected before the rest is frozen
    again. Objects still die by reference counting while frozen.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()



def content_stamp(folder: Path) -> tuple:
    """What a version folder holds, cheaply: (path, size, mtime) of every file below it.

    A folder's own mtime changes only when an entry directly inside it is added or
    removed, not when a file deeper down (variables/...) is rewritten in place or finished
    by a copy that was caught half-way."""
    entries = []
    for directory, _, files in os.walk(folder):
        for file in files:
            path = os.path.join(directory, file)
            try:
                status = os.stat(path)
            except OSError:
                continue  # removed while listed
            entries.append((os.path.relpath(path, folder), status.st_size, status.st_mtime_ns))
    return tuple(sorted(entries))
