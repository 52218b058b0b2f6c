"""Safe, atomic extraction of .tar(.gz/.bz2/.xz) and .zip archives.

Every member is checked *before* anything is written: absolute names, ``..`` components,
links (hard or symbolic) whose target is absolute or leaves the extraction root, and
device files / FIFOs make the whole archive refused with
:class:`~genre_cli.errors.UnsafeArchiveError` naming the member.

Tar members are judged by Python's own ``data`` extraction filter (``tarfile.data_filter``,
PEP 706), run over every member first (the filter quietly strips a leading ``/``; we refuse
such a member instead), then extracted with ``filter="data"``. ``zipfile`` has no such
filter, so zip members are checked here and written to paths re-checked against the root.

Extraction goes to a temporary directory beside ``dest`` which is renamed onto ``dest``
(``os.replace``) only when everything succeeded, so ``dest`` either does not exist or is
complete, and a refused or broken archive leaves nothing behind.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

from genre_cli.errors import DatasetError, SourceError, UnsafeArchiveError

__all__ = ["extract", "archive_kind", "ARCHIVE_SUFFIXES"]

#: Name endings recognised as archives (the content decides the format, not the name).
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")


def archive_kind(path: Path) -> str | None:
    """``"zip"``, ``"tar"`` or ``None``, judged from the file's content."""
    path = Path(path)
    if not path.is_file():
        return None
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        return None
    return None


def extract(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into the directory ``dest``, safely and atomically.

    Parameters
    ----------
    archive : Path
        A tar (optionally gzip/bzip2/xz compressed) or zip file.
    dest : Path
        Directory that will hold the archive's members. If it already exists it is
        replaced (the old tree is removed after the new one is in place).

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    UnsafeArchiveError
        A member has an absolute path, a ``..`` component, is a link leaving ``dest``, or a
        device file / FIFO. Nothing is written.
    SourceError
        The file is missing, not an archive, or truncated/corrupt (bad input, exit code 2).
    """
    archive, dest = Path(archive), Path(dest)
    kind = archive_kind(archive)
    if kind is None:
        if not archive.exists():
            raise SourceError(f"{archive}: no such archive")
        raise SourceError(f"{archive}: not a tar or zip archive (or it is damaged)")
    parent = dest.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".extracting", dir=parent))
    try:
        if kind == "tar":
            _extract_tar(archive, tmp)
        else:
            _extract_zip(archive, tmp)
        _install(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _install(tmp: Path, dest: Path) -> None:
    """Move the finished tree onto ``dest``; an existing ``dest`` is swapped out first."""
    if dest.is_symlink() or dest.is_file():
        raise DatasetError(f"{dest}: exists and is not a directory; refusing to replace it")
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
        os.rmdir(old)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


# -- checks of zip members ------------------------------------------------------------


def _check_name(name: str, archive: Path) -> str:
    """Normalised relative POSIX name, or UnsafeArchiveError."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":") or name.startswith("\\"):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} has an absolute path; archive refused")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} contains '..'; archive refused")
    if "\x00" in raw:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} contains a NUL byte; archive refused")
    return "/".join(parts)


def _check_link(name: str, target: str, *, hard: bool, archive: Path) -> None:
    """A link (``name`` → ``target``) must stay inside the root."""
    t = target.replace("\\", "/")
    if t.startswith("/") or (len(t) > 1 and t[1] == ":"):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} links to the absolute path {target!r}; archive refused")
    # Hard-link targets are relative to the archive root, symlink targets to the link's folder.
    base = "" if hard else posixpath.dirname(name)
    resolved = posixpath.normpath(posixpath.join(base, t))
    if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} links outside the extraction folder ({target!r}); archive refused")


# -- tar --------------------------------------------------------------------------------

#: What each refusal of tarfile's data filter means, in our words.
_FILTER_REASONS = {
    tarfile.AbsolutePathError: "has an absolute path",
    tarfile.OutsideDestinationError: "contains '..' (it would be written outside the extraction folder)",
    tarfile.AbsoluteLinkError: "links to an absolute path",
    tarfile.LinkOutsideDestinationError: "links outside the extraction folder",
    tarfile.SpecialFileError: "is a device file or FIFO",
}


def _extract_tar(archive: Path, tmp: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                try:
                    allowed = tarfile.data_filter(m, str(tmp))
                except tarfile.FilterError as exc:
                    reason = next((r for cls, r in _FILTER_REASONS.items() if isinstance(exc, cls)), str(exc))
                    target = f" ({m.linkname!r})" if m.issym() or m.islnk() else ""
                    raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} {reason}{target}; archive refused") from None
                if allowed.name != m.name:  # the filter made an absolute name relative: refuse it instead
                    raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} has an absolute path; archive refused")
            tf.extractall(tmp, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SourceError(f"{archive}: cannot extract, archive damaged or truncated ({_short(exc)})") from None


# -- zip --------------------------------------------------------------------------------


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0


def _extract_zip(archive: Path, tmp: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            plan: list[tuple[zipfile.ZipInfo, str, str]] = []  # (info, name, kind)
            for info in infos:
                name = _check_name(info.filename, archive)
                mode = _zip_mode(info)
                kind = "dir" if info.is_dir() else "file"
                if mode and stat.S_ISLNK(mode):
                    target = zf.read(info).decode("utf-8", "surrogateescape")
                    _check_link(name, target, hard=False, archive=archive)
                    kind = "symlink"
                elif stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # no type bits: a plain file
                    raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} is a device file or FIFO; archive refused")
                if name:
                    plan.append((info, name, kind))
            root = tmp.resolve()
            for info, name, kind in plan:
                target_path = root.joinpath(*name.split("/"))
                # Re-check against the real filesystem (a symlink extracted earlier could redirect us).
                if not _inside(target_path.parent, root):
                    raise UnsafeArchiveError(
                        f"{archive.name}: member {info.filename!r} would be written outside the extraction folder; archive refused"
                    )
                if kind == "dir":
                    target_path.mkdir(parents=True, exist_ok=True)
                elif kind == "symlink":
                    target_path.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(zf.read(info).decode("utf-8", "surrogateescape"), target_path)
                else:
                    target_path.parent.mkdir(parents=True, exist_ok=True)
                    if target_path.is_symlink():
                        raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} would overwrite a link; archive refused")
                    with zf.open(info) as src, open(target_path, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise SourceError(f"{archive}: cannot extract, archive damaged or unsupported ({_short(exc)})") from None


def _inside(path: Path, root: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(root)
    except ValueError:
        return False
    return True


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1][:200] if text else type(exc).__name__
