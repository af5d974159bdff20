"""The model manager: which versions of which models are loaded, kept as TF Serving keeps them.

For each configured model it lists the integer version folders under the base path, picks
the versions its policy asks for (`latest {num_versions}`, `all`, `specific`), loads the
new ones (replaying their warm-up requests) and only then unloads the ones no longer asked
for, so a rollout never leaves a moment without a version to serve. A version that fails
to load is recorded, with its error, in the model status and the log, and whatever was
serving before keeps serving. Version labels map names such as `stable` to versions.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import threading
from pathlib import Path

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from zoo.repository import policy_versions
from zoo.server.config import resolve_base_path
from zoo.server.errors import Code, ServingError, invalid_argument, not_found
from zoo.server.servable import Servable

log = logging.getLogger("zoo.server")
State = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass
class VersionRecord:
    """What the manager knows about one version: its state, its error, its servable."""

    version: int
    state: int = State.START
    error: ServingError | None = None
    servable: Servable | None = None
    stamp: float = 0.0  # the folder's mtime when it was last tried


@dataclasses.dataclass
class ModelEntry:
    config: model_server_config_pb2.ModelConfig
    base_path: Path
    versions: dict[int, VersionRecord] = dataclasses.field(default_factory=dict)

    def available(self) -> dict[int, Servable]:
        return {v: r.servable for v, r in self.versions.items() if r.state == State.AVAILABLE and r.servable}


class ModelManager:
    """Loads, serves and unloads versions for a `ModelServerConfig`.

    Args:
        config: the models to serve.
        config_dir: the config file's folder, for container base paths (see
            `resolve_base_path`); None for paths given on the command line.
        poll_seconds: how often to look for new versions; 0 looks once, at start.
    """

    def __init__(self, config: model_server_config_pb2.ModelServerConfig, *,
                 config_dir: Path | None = None, poll_seconds: float = 1.0):
        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()  # one synchronisation at a time
        self._models: dict[str, ModelEntry] = {}
        self._config_dir = config_dir
        self._poll_seconds = poll_seconds
        self._heap_changed = False  # a version loaded, failed or was dropped since the last freeze
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
        with self._sync_lock:
            with self._lock:
                entries = list(self._models.values())
            for entry in entries:
                self._sync(entry)
            if self._heap_changed:
                self._heap_changed = False
                freeze_heap()

    def reload(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Serve a new config: add, change and remove models (HandleReloadConfigRequest)."""
        with self._sync_lock:
            self._apply(config)
        self.poll_once()

    def _apply(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        wanted = {entry.name: entry for entry in config.model_config_list.config}
        with self._lock:
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

    # -- synchronising one model with its folder --------------------------------------

    def _sync(self, entry: ModelEntry) -> None:
        on_disk = self._versions_on_disk(entry)
        aspired = policy_versions(entry.config, sorted(on_disk))
        for version in sorted(aspired, reverse=True):
            record = entry.versions.get(version)
            if record is not None and record.state == State.AVAILABLE:
                continue
            if record is not None and record.error is not None and record.stamp == on_disk[version]:
                continue  # failed before and unchanged since: do not retry every poll
            self._load(entry, version, entry.base_path / str(version), on_disk[version])
        if any(v in entry.available() for v in aspired):
            for version, record in list(entry.versions.items()):
                if version not in aspired and record.state == State.AVAILABLE:
                    self._unload(entry, record)

    def _versions_on_disk(self, entry: ModelEntry) -> dict[int, float]:
        """Integer version folders under the base path that stay inside it, with mtimes."""
        base = entry.base_path
        try:
            children = list(os.scandir(base))
        except OSError:
            return {}
        root = os.path.realpath(base)
        found = {}
        for child in children:
            if not child.name.isdigit() or not child.is_dir():
                continue
            if os.path.commonpath([root, os.path.realpath(child.path)]) != root:
                log.warning("ignoring %s: it leads outside the base path %s", child.path, base)
                continue
            found[int(child.name)] = child.stat().st_mtime
        return found

    def _load(self, entry: ModelEntry, version: int, path: Path, stamp: float) -> None:
        name = entry.config.name
        record = VersionRecord(version, State.LOADING, stamp=stamp)
        self._heap_changed = True
        with self._lock:
            entry.versions[version] = record
        log.info("loading %s version %d from %s", name, version, path)
        try:
            servable = Servable(name, version, path)
            replayed = servable.warm_up()
        except Exception as error:  # noqa: BLE001  (any failure is a failed version)
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            record.state, record.error = State.END, ServingError(Code.UNKNOWN, message.splitlines()[0])
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
        with self._lock:
            return sorted(self._models)

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable for a request: a version, a label, or the latest available."""
        if version is not None and label:
            raise invalid_argument(
                f"Both model version ({version}) and model version label ({label}) cannot be supplied."
            )
        with self._lock:
            entry = self._models.get(name)
            if entry is not None and label:
                labels = entry.config.version_labels
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

    def status(self, name: str, version: int | None = None, label: str | None = None):
        """GetModelStatus: the state (and error) of the model's versions."""
        response = get_model_status_pb2.GetModelStatusResponse()
        with self._lock:
            entry = self._models.get(name)
            if entry is not None and label:
                if label not in entry.config.version_labels:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
                version = entry.config.version_labels[label]
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

