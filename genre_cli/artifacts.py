"""Self-describing HDF5 artifacts: metadata, fingerprints, atomic writes, locking, tables.

The container of every format in :mod:`genre_cli.formats`.

Every file a stage writes carries these attributes on its root group:

``stage``            name of the stage that wrote it (``fetch``, ``segment``, ...)
``schema_version``   integer layout version of that stage's files
``params``           the stage parameters, as sorted JSON
``upstream``         JSON ``{role: {"fingerprint": ..., "path": ...}}`` of its inputs
``fingerprint``      sha256 of stage + schema + params + upstream fingerprints (DVC's cache-key idea)
``versions``         JSON of library versions (python, numpy, h5py, librosa, torch, ...)
``created``          ISO-8601 UTC time
``complete``         set to True last, just before the file is renamed into place

A stage is *up to date* when its output exists, is complete and has the fingerprint the
stage would compute now. Writes go to a hidden temporary file in the same folder that is
``os.replace``-d into place only on success, so a killed run never leaves a file that looks
finished; a ``.lock`` file with the writer's pid keeps two processes from writing the same
output.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import platform
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genre_cli import interrupts
from genre_cli.errors import ArtifactError, GenreError, LockError, MissingInputError


@dataclass(frozen=True)
class Kind:
    """An artifact kind: the stage that writes it, its layout version, the command that makes it.

    Each format module of :mod:`genre_cli.formats` registers its kind (:func:`register_kind`)
    next to its writer and reader, so a layout and its version live in one place.
    """

    stage: str
    schema: int  #: layout version; bump when the layout changes (older readers then refuse the file)
    maker: str  #: the command that makes it, for "run `genre X` first" hints


_KINDS: dict[str, Kind] = {}


def register_kind(stage: str, *, schema: int, maker: str) -> Kind:
    """Declare the artifact kind written by ``stage`` (once per stage)."""
    if stage in _KINDS:
        raise ValueError(f"artifact kind {stage!r} is already registered")
    _KINDS[stage] = Kind(stage, schema, maker)
    return _KINDS[stage]


def kinds() -> dict[str, Kind]:
    """Every registered artifact kind by stage (importing :mod:`genre_cli.formats` registers them)."""
    import genre_cli.formats  # noqa: F401  (each format module registers its kind)

    return dict(_KINDS)


def __getattr__(name: str) -> Any:
    """``SCHEMAS`` (stage -> layout version) and ``MAKERS`` (stage -> command), from the kinds."""
    if name == "SCHEMAS":
        return {k: v.schema for k, v in kinds().items()}
    if name == "MAKERS":
        return {k: v.maker for k, v in kinds().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _maker(stage: str) -> str:
    kind = kinds().get(stage)
    return kind.maker if kind else "genre"


_VERSIONED = ("numpy", "h5py", "librosa", "soundfile", "soxr", "hdf5plugin", "torch", "scikit-learn", "genre-cli")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the form that is hashed and stored."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def fingerprint(stage: str, params: dict[str, Any], upstream: dict[str, str]) -> str:
    """sha256 hex of stage, its schema version, params and upstream fingerprints.

    Parameters
    ----------
    stage : str
        Stage name (a registered artifact kind).
    params : dict
        JSON-serialisable parameters.
    upstream : dict[str, str]
        Role → fingerprint of each input (paths are deliberately not hashed: moving a file
        does not make its products stale).
    """
    payload = canonical_json({"stage": stage, "schema": kinds()[stage].schema, "params": params, "upstream": upstream})
    return hashlib.sha256(payload.encode()).hexdigest()


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape results (read without importing them)."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@dataclass
class ArtifactMeta:
    """The root attributes of an artifact, decoded."""

    path: Path
    stage: str
    schema_version: int
    params: dict[str, Any]
    upstream: dict[str, dict[str, str]]
    fingerprint: str
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    complete: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def upstream_fingerprints(self) -> dict[str, str]:
        return {k: v["fingerprint"] for k, v in self.upstream.items()}


def _attr_str(attrs: h5py.AttributeManager, key: str, default: str = "") -> str:
    value = attrs.get(key, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _attr_json(attrs: h5py.AttributeManager, key: str, default: Any, path: Path) -> Any:
    if key not in attrs:
        return default
    try:
        return json.loads(_attr_str(attrs, key))
    except json.JSONDecodeError:
        raise ArtifactError(f"{path}: attribute {key!r} is not valid JSON") from None


def read_meta(path: str | Path) -> ArtifactMeta:
    """Read an artifact's root attributes without checking completeness.

    Raises
    ------
    MissingInputError
        The file does not exist.
    ArtifactError
        The file is not HDF5, or is not a ``genre`` artifact.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            return _meta_from_attrs(path, f.attrs)
    except OSError as exc:
        raise ArtifactError(f"{path}: not a readable HDF5 file ({exc})") from None


def _meta_from_attrs(path: Path, attrs: h5py.AttributeManager) -> ArtifactMeta:
    if "stage" not in attrs or "fingerprint" not in attrs:
        raise ArtifactError(f"{path}: not a genre artifact (no stage/fingerprint attributes)")
    try:
        schema = int(attrs.get("schema_version", 0))
    except (TypeError, ValueError):
        raise ArtifactError(f"{path}: schema_version is not an integer") from None
    known = {"stage", "schema_version", "params", "upstream", "fingerprint", "versions", "created", "complete"}
    extra = {}
    for k in attrs:
        if k not in known:
            v = attrs[k]
            extra[k] = v.decode() if isinstance(v, bytes) else (v.item() if isinstance(v, np.generic) else v)
    return ArtifactMeta(
        path=path,
        stage=_attr_str(attrs, "stage"),
        schema_version=schema,
        params=_attr_json(attrs, "params", {}, path),
        upstream=_attr_json(attrs, "upstream", {}, path),
        fingerprint=_attr_str(attrs, "fingerprint"),
        versions=_attr_json(attrs, "versions", {}, path),
        created=_attr_str(attrs, "created"),
        complete=_is_true(attrs.get("complete", False)),
        extra=extra,
    )


def _is_true(value: Any) -> bool:
    """Only a real boolean True counts (a string such as "no" must not read as complete)."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def check_meta(meta: ArtifactMeta, stage: str | tuple[str, ...]) -> None:
    """Raise :class:`ArtifactError` unless ``meta`` is a complete artifact of ``stage`` we can read."""
    stages = (stage,) if isinstance(stage, str) else tuple(stage)
    path = meta.path
    if meta.stage not in stages:
        want = " or ".join(stages)
        raise ArtifactError(
            f"{path} is a {meta.stage!r} artifact, expected {want}",
            hint=f"make one with `{_maker(stages[0])}`",
        )
    if not meta.complete:
        raise ArtifactError(f"{path} is incomplete (its run was interrupted)", hint=f"rerun `{_maker(meta.stage)}`")
    kind = kinds().get(meta.stage)
    supported = kind.schema if kind else 0
    if meta.schema_version > supported:
        raise ArtifactError(
            f"{path} has schema version {meta.schema_version} of stage {meta.stage!r}; this genre_cli reads up to {supported}",
            hint="upgrade genre_cli",
        )


@contextlib.contextmanager
def open_artifact(path: str | Path, stage: str | tuple[str, ...]) -> Iterator[tuple[h5py.File, ArtifactMeta]]:
    """Open a complete artifact of ``stage`` read-only; yields ``(file, meta)``.

    A missing file raises :class:`MissingInputError` whose hint names the command that makes it.
    ``KeyError``, ``TypeError``, ``ValueError``, ``IndexError``, ``AttributeError`` and
    ``OSError`` raised while reading inside the ``with`` block (missing or mistyped attributes,
    unreadable datasets) become :class:`ArtifactError` naming the file (exit code 2).
    """
    path = Path(path)
    stages = (stage,) if isinstance(stage, str) else tuple(stage)
    if not path.exists():
        raise MissingInputError(f"{path} does not exist", hint=f"run `{_maker(stages[0])}` first")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:
        meta = _meta_from_attrs(path, f.attrs)
        check_meta(meta, stages)
        try:
            yield f, meta
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OSError) as exc:
            # Reading a file someone else made: a missing attribute, an attribute of the wrong
            # type, a dataset h5py cannot read ... is a malformed artifact (exit 2), not a crash.
            text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise ArtifactError(f"{path}: malformed {meta.stage} artifact ({type(exc).__name__}: {text})") from exc
    finally:
        f.close()


def is_up_to_date(path: str | Path, expected_fingerprint: str) -> bool:
    """True when ``path`` is a complete artifact whose fingerprint equals ``expected_fingerprint``."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        meta = read_meta(path)
    except GenreError:
        return False
    kind = kinds().get(meta.stage)
    return meta.complete and meta.fingerprint == expected_fingerprint and kind is not None and meta.schema_version == kind.schema


# ----------------------------------------------------------------------------- locking


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[Path]:
    """Hold ``<path>.lock`` (containing our pid) for the duration; refuse if a live process holds it.

    A lock left by a dead process is taken over.
    """
    lock = path.with_name(path.name + ".lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                holder = 0
            if holder and holder != os.getpid() and _pid_alive(holder):
                raise LockError(f"{path} is being written by another process (pid {holder}, lock {lock})") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale lock of a dead process
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    else:
        raise LockError(f"could not acquire {lock}")
    try:
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


# ----------------------------------------------------------------------------- writing


def temp_path_for(path: Path) -> Path:
    """The hidden temporary file a write of ``path`` goes to before it is renamed into place."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete temporary files of ``path`` left by writers that died (SIGKILL, power loss).

    Called with the lock held, so no live writer of ``path`` exists except us.
    """
    removed = []
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


@contextlib.contextmanager
def write_artifact(
    path: str | Path,
    *,
    stage: str,
    params: dict[str, Any],
    upstream: dict[str, tuple[str, str | Path]] | None = None,
    attrs: dict[str, Any] | None = None,
) -> Iterator[h5py.File]:
    """Write an artifact atomically; yields the open (temporary) HDF5 file.

    Parameters
    ----------
    path : path-like
        Final location. Parent folders are created.
    stage : str
        Stage name (a registered artifact kind).
    params : dict
        Stage parameters (JSON-serialisable; stored sorted).
    upstream : dict[str, (fingerprint, path)]
        Inputs by role.
    attrs : dict
        Extra root attributes (strings, numbers; dicts/lists are stored as JSON).

    On normal exit ``complete`` is set and the file is renamed into place. On any exception
    (KeyboardInterrupt included) the temporary file is removed and the previous artifact at
    ``path``, if any, is left untouched. ``OSError`` while writing — and the
    ``RuntimeError`` h5py raises when HDF5 itself fails to write, flush or close (a full
    disk) — is re-raised as :class:`GenreError` naming the path and errno.
    """
    path = Path(path)
    upstream = upstream or {}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenreError(f"cannot create {path.parent}: {exc.strerror} (errno {exc.errno})") from None
    ups = {role: {"fingerprint": fp, "path": str(p)} for role, (fp, p) in upstream.items()}
    fp = fingerprint(stage, params, {k: v["fingerprint"] for k, v in ups.items()})
    with file_lock(path):
        remove_stale_temps(path)
        tmp = temp_path_for(path)
        f = None
        try:
            f = h5py.File(tmp, "w")
            f.attrs["stage"] = stage
            f.attrs["schema_version"] = kinds()[stage].schema
            f.attrs["params"] = canonical_json(params)
            f.attrs["upstream"] = canonical_json(ups)
            f.attrs["fingerprint"] = fp
            f.attrs["versions"] = canonical_json(library_versions())
            f.attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            f.attrs["complete"] = False
            for k, v in (attrs or {}).items():
                f.attrs[k] = canonical_json(v) if isinstance(v, (dict, list, tuple)) else v
            yield f
            interrupts.check()  # a Ctrl-C swallowed somewhere in the stage still stops the commit
            f.attrs["complete"] = True
            f.flush()
            f.close()
            f = None
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except (OSError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and not _is_hdf5_io_error(exc):
                raise  # a bug or a torch error in the stage itself, not a failed write
            raise GenreError(f"writing {path} failed: {_io_reason(exc)}; nothing was written") from None
        finally:
            if f is not None:
                with contextlib.suppress(Exception):
                    f.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


_HDF5_ERRNO = re.compile(r"errno = (\d+)")


def _is_hdf5_io_error(exc: BaseException) -> bool:
    """True for HDF5's own I/O failures (h5py raises them as RuntimeError from flush/close)."""
    text = str(exc)
    return (
        "write failed" in text
        or "Unable to synchronously flush" in text
        or "Unable to synchronously close" in text
        or bool(_HDF5_ERRNO.search(text))
    )


def _io_reason(exc: BaseException) -> str:
    """``"<strerror> (errno N ENAME)"`` from an OSError, or from the errno HDF5 puts in its message."""
    num = getattr(exc, "errno", None)
    if num is None and (m := _HDF5_ERRNO.search(str(exc))):
        num = int(m.group(1))
    text = getattr(exc, "strerror", None) or (os.strerror(num) if num else str(exc).strip().splitlines()[0][:200])
    return f"{text} (errno {num} {errno.errorcode.get(num or 0, '?')})" if num else text


# ----------------------------------------------------------------------------- tables and JSON attrs

_STR = h5py.string_dtype("utf-8")


def write_table(parent: h5py.Group, name: str, columns: dict[str, Any], *, compression: str | None = "gzip") -> h5py.Group:
    """Store equal-length columns as datasets of group ``name``; strings as UTF-8.

    Parameters
    ----------
    columns : dict[str, array-like [shape=(n,)]]
        Numeric arrays or sequences of ``str``.
    """
    g = parent.create_group(name)
    lengths = set()
    for col, values in columns.items():
        arr = np.asarray(values)
        lengths.add(len(arr))
        if arr.dtype.kind in "OUS":
            data = np.array([str(v) for v in arr], dtype=object)
            g.create_dataset(col, data=data, dtype=_STR, compression=compression if len(arr) else None)
        else:
            g.create_dataset(col, data=arr, compression=compression if len(arr) else None)
    if len(lengths) > 1:
        raise ValueError(f"table {name!r} columns differ in length: {sorted(lengths)}")
    g.attrs["columns"] = canonical_json(list(columns))
    return g


def read_table(parent: h5py.Group, name: str, *, path: str | Path = "") -> dict[str, np.ndarray]:
    """Read a table written by :func:`write_table`; strings come back as ``object`` arrays of ``str``.

    Raises :class:`ArtifactError` when the group is missing or its columns differ in length.
    """
    if name not in parent or not isinstance(parent[name], h5py.Group):
        raise ArtifactError(f"{path or parent.file.filename}: missing table {name!r}")
    g = parent[name]
    out: dict[str, np.ndarray] = {}
    for col in g:
        ds = g[col]
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
            raise ArtifactError(f"{path or parent.file.filename}: table {name!r} column {col!r} is not a 1-D dataset")
        if h5py.check_string_dtype(ds.dtype) is not None:
            out[col] = np.array(ds.asstr()[()], dtype=object) if len(ds) else np.zeros(0, dtype=object)
        else:
            out[col] = ds[()]
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise ArtifactError(f"{path or parent.file.filename}: table {name!r} columns differ in length")
    return out


def get_json_attr(obj: h5py.HLObject, key: str, default: Any = None) -> Any:
    """Decode a JSON attribute (``default`` when absent)."""
    if key not in obj.attrs:
        return default
    value = obj.attrs[key]
    try:
        return json.loads(value.decode() if isinstance(value, bytes) else str(value))
    except json.JSONDecodeError:
        raise ArtifactError(f"{obj.file.filename}: attribute {key!r} is not valid JSON") from None


def require_dataset(parent: h5py.Group, name: str, *, ndim: int | None = None, kind: str | None = None) -> h5py.Dataset:
    """Return dataset ``name`` or raise :class:`ArtifactError` if it is missing or misshapen.

    ``kind`` is a numpy dtype-kind string such as ``"f"`` or ``"iu"``.
    """
    where = parent.file.filename
    if name not in parent or not isinstance(parent[name], h5py.Dataset):
        raise ArtifactError(f"{where}: missing dataset {parent.name.rstrip('/')}/{name}")
    ds = parent[name]
    if ndim is not None and ds.ndim != ndim:
        raise ArtifactError(f"{where}: dataset {ds.name} has {ds.ndim} dimensions, expected {ndim}")
    if kind is not None and ds.dtype.kind not in kind:
        raise ArtifactError(f"{where}: dataset {ds.name} has dtype {ds.dtype}, expected kind {kind!r}")
    return ds
