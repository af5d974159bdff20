"""The model repository on disk, in TensorFlow Serving's layout.

    models/
      models.config              ModelServerConfig (text proto), regenerated on export
      <name>/<version>/          one SavedModel per integer version, plus the zoo's files

A version is assembled in a hidden temporary folder beside its siblings and renamed into
place in one step, so a server polling `models/<name>/` (TF Serving or `zoo serve`) never
sees a half-written version: TF Serving ignores folder names that are not integers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from zoo.errors import ExportError
from zoo.protocol.names import CONTAINER_MODELS_ROOT

SERVING_CONFIG = "models.config"
DEFAULT_SERVING_ROOT = CONTAINER_MODELS_ROOT


_INT64_MAX = 2**63 - 1


def parse_version(name: str) -> int | None:
    """The version a folder name stands for, read as TF Serving reads it (absl::SimpleAtoi):
    `123` and `00000123` are both 123; surrounding whitespace and a sign are allowed; text
    that is not a whole base-10 number within int64 is not a version."""
    text = name.strip(" \t\n\v\f\r")
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    value = int(text)
    return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None


def version_folders(model_dir: Path) -> dict[int, Path]:
    """Each version under a model's folder, and the folder it is loaded from.

    Where two folders name the same version (`123` and `0123`), the one later in name
    order is used, as TF Serving does (it logs the duplicate).
    """
    try:
        children = sorted(os.scandir(model_dir), key=lambda child: child.name)
    except OSError:
        return {}
    found = {}
    for child in children:
        version = parse_version(child.name)
        try:
            is_folder = child.is_dir()
        except OSError:
            is_folder = False
        if version is not None and is_folder:
            found[version] = Path(child.path)
    return found


def versions(model_dir: Path) -> list[int]:
    """The versions under a model's folder, ascending."""
    return sorted(version_folders(model_dir))


def policy_versions(model_config, on_disk: list[int]) -> set[int]:
    """The versions TF Serving loads for a ModelConfig, of those on disk (ascending):
    `all`, the `specific` ones, or the `latest` N (default 1)."""
    policy = model_config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(on_disk)
    if kind == "specific":
        return set(policy.specific.versions) & set(on_disk)
    count = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
    return set(on_disk[-count:])


def latest_version(models_dir: Path, name: str) -> int:
    """The highest version number of a model; ExportError if it has none."""
    found = versions(models_dir / name)
    if not found:
        raise ExportError(f"model '{name}' has no exported version under {models_dir / name}")
    return found[-1]


def version_dir(models_dir: Path, name: str, version: int | None = None) -> Path:
    """The folder of a version (default: the latest), checked to exist."""
    version = latest_version(models_dir, name) if version is None else version
    path = version_folders(models_dir / name).get(version)
    if path is None:
        raise ExportError(
            f"model '{name}' has no version {version}; its versions are: "
            f"{', '.join(map(str, versions(models_dir / name))) or 'none'}"
        )
    return path


def publish_version(
    models_dir: Path,
    name: str,
    write: Callable[[Path], None],
    stamp: Callable[[Path, int], None],
) -> Path:
    """Assemble a new version and rename it into place.

    Args:
        models_dir: the repository.
        name: the model's name.
        write: writes the version's content into the folder it is given.
        stamp: writes what depends on the version number (the model card) into the folder;
            called again if the number changes.

    The version is the highest existing one plus one. If another writer takes that number
    first, the rename fails (the target is a non-empty folder) and the next number is
    tried, so two concurrent exports never overwrite each other.

    Returns:
        The published version's folder.
    """
    model_dir = models_dir / name
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned(model_dir, ".incoming-")
    staging = Path(tempfile.mkdtemp(prefix=f".incoming-{os.getpid()}-", dir=model_dir))
    staging.chmod(0o777 & ~UMASK)  # mkdtemp makes it 0700: a server of another user could not read it
    try:
        write(staging)
        version = (versions(model_dir) or [0])[-1] + 1
        while True:
            stamp(staging, version)
            target = model_dir / str(version)
            try:
                os.rename(staging, target)
                return target
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                version += 1
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def read_serving_config(models_dir: Path):
    """models/models.config as a ModelServerConfig (empty if there is none yet)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = models_dir / SERVING_CONFIG
    config = model_server_config_pb2.ModelServerConfig()
    if path.is_file():
        try:
            text_format.Parse(path.read_text(encoding="utf-8"), config)
        except text_format.ParseError as error:
            raise ExportError(f"{path} is not a valid ModelServerConfig: {error}") from None
    return config


def write_serving_config(models_dir: Path, serving_root: str = DEFAULT_SERVING_ROOT,
                         edit: Callable[[dict], None] | None = None) -> Path:
    """Regenerate models/models.config listing every model that has a version.

    Entries already in the file keep what was set on them (version policy, labels); models
    whose folder is gone are dropped; new models are added with TF Serving's defaults.
    Base paths are `<serving_root>/<name>`: where the TF Serving container sees them.
    `edit(entries_by_name)` may change entries before the file is written. A model with
    version labels is served with a `specific` policy: its labelled versions, the version
    before each of them, and its newest one, since TF Serving resolves labels only to
    loaded versions and moves a label only to a loaded version.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = models_dir / SERVING_CONFIG
    models_dir.mkdir(parents=True, exist_ok=True)
    with _locked(models_dir):  # exports and label changes may run at once: no lost updates
        kept = {c.name: c for c in read_serving_config(models_dir).model_config_list.config}
        config = model_server_config_pb2.ModelServerConfig()
        names = sorted(p.name for p in models_dir.iterdir() if p.is_dir() and versions(p))
        entries = {}
        for name in names:
            entry = config.model_config_list.config.add()
            if name in kept:
                entry.CopyFrom(kept[name])
            entry.name = name
            entry.base_path = f"{serving_root.rstrip('/')}/{name}"
            entry.model_platform = "tensorflow"
            entries[name] = entry
        if edit is not None:
            edit(entries)
        for name, entry in entries.items():
            if entry.version_labels:
                found = versions(models_dir / name)
                labelled = set(entry.version_labels.values())
                # The version before each labelled one stays loaded too: TF Serving moves a
                # label only to a loaded version, so `zoo rollback` must find it loaded.
                before = {max((v for v in found if v < label), default=label) for label in labelled}
                wanted = sorted(labelled | before | {found[-1]})
                entry.model_version_policy.specific.ClearField("versions")
                entry.model_version_policy.specific.versions.extend(wanted)
        atomic_write_text(path, text_format.MessageToString(config))
    return path


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _current_umask()  # read once, at import: os.umask can only be read by setting it


def remove_abandoned(folder: Path, prefix: str) -> None:
    """Remove what a killed writer left: `<prefix><pid>-...` entries whose process is gone
    (a kill -9 mid-export left its staging folder, up to megabytes, forever)."""
    for entry in folder.glob(f"{prefix}*"):
        pid_text = entry.name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


@contextlib.contextmanager
def _locked(models_dir: Path):
    with open(models_dir / ".models.config.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old content or the new, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(path.parent, f".{path.name}.")
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~UMASK)  # mkstemp makes it 0600, whatever the umask
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
