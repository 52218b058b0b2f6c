"""genre_cli.archive: safe and atomic extraction."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from genre_cli.archive import archive_kind, extract
from genre_cli.errors import DatasetError, UnsafeArchiveError


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                name, data = m
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def link(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture
def layout(tmp_path: Path):
    """tmp_path/archives (inputs), tmp_path/root (the data root); extraction goes to root/out."""
    (tmp_path / "archives").mkdir()
    (tmp_path / "root").mkdir()
    return tmp_path


def test_tar_gz_extracts_atomically(layout: Path):
    arc = make_tar(layout / "archives" / "a.tar.gz", [("genres/blues/blues.00000.au", b"x" * 10), ("genres/README", b"hi")])
    out = extract(arc, layout / "root" / "out")
    assert out == layout / "root" / "out"
    assert (out / "genres" / "blues" / "blues.00000.au").read_bytes() == b"x" * 10
    assert tree(layout / "root") == {"out", "out/genres", "out/genres/blues", "out/genres/blues/blues.00000.au", "out/genres/README"}


def test_plain_tar_and_relative_link_inside_are_fine(layout: Path):
    arc = layout / "archives" / "a.tar"
    with tarfile.open(arc, "w") as tf:
        info = tarfile.TarInfo("d/file.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
        tf.addfile(link("d/alias.txt", "file.txt"))
    out = extract(arc, layout / "root" / "out")
    assert (out / "d" / "alias.txt").read_bytes() == b"abc"


def test_existing_destination_is_replaced(layout: Path):
    dest = layout / "root" / "out"
    (dest / "old").mkdir(parents=True)
    arc = make_tar(layout / "archives" / "a.tar.gz", [("new.txt", b"n")])
    extract(arc, dest)
    assert tree(layout / "root") == {"out", "out/new.txt"}


@pytest.mark.parametrize(
    "member, fragment",
    [
        (("../evil", b"boom"), "'..'"),
        (("genres/../../evil", b"boom"), "'..'"),
        (("/tmp/genre_cli_abs_evil", b"boom"), "absolute"),
        (link("genres/escape", "../../evil"), "outside"),
        (link("genres/abs", "/etc/passwd"), "absolute"),
        (link("genres/hard", "../evil", hard=True), "outside"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink-outside", "symlink-absolute", "hardlink-outside"],
)
def test_unsafe_tar_is_refused_and_nothing_written(layout: Path, member, fragment):
    arc = make_tar(layout / "archives" / "bad.tar.gz", [("genres/blues/ok.au", b"fine"), member])
    before = tree(layout)
    with pytest.raises(UnsafeArchiveError) as err:
        extract(arc, layout / "root" / "out")
    name = member.name if isinstance(member, tarfile.TarInfo) else member[0]
    assert repr(name) in str(err.value) and fragment in str(err.value)
    assert tree(layout) == before  # not even the safe member, no temp folder left
    assert not Path("/tmp/genre_cli_abs_evil").exists()


def test_device_file_is_refused(layout: Path):
    dev = tarfile.TarInfo("genres/null")
    dev.type = tarfile.CHRTYPE
    dev.devmajor, dev.devminor = 1, 3
    arc = make_tar(layout / "archives" / "dev.tar.gz", [dev])
    with pytest.raises(UnsafeArchiveError, match="genres/null"):
        extract(arc, layout / "root" / "out")
    assert tree(layout / "root") == set()


def test_zip_extracts(layout: Path):
    arc = layout / "archives" / "k.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("Data/genres_original/jazz/jazz.00000.wav", b"RIFF")
        zf.writestr("Data/features_30_sec.csv", "a,b\n")
    out = extract(arc, layout / "root" / "k")
    assert (out / "Data" / "genres_original" / "jazz" / "jazz.00000.wav").read_bytes() == b"RIFF"
    assert archive_kind(arc) == "zip"


def _zip_symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "name, target, fragment",
    [
        ("../evil", None, "'..'"),
        ("/tmp/genre_cli_zip_abs_evil", None, "absolute"),
        ("Data/link", "../../evil", "outside"),
        ("Data/abs", "/etc", "absolute"),
    ],
    ids=["dotdot", "absolute", "symlink-outside", "symlink-absolute"],
)
def test_unsafe_zip_is_refused_and_nothing_written(layout: Path, name, target, fragment):
    arc = layout / "archives" / "bad.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("Data/ok.txt", b"fine")
        if target is None:
            zf.writestr(zipfile.ZipInfo(name), b"boom")
        else:
            zf.writestr(_zip_symlink(name, target), target)
    before = tree(layout)
    with pytest.raises(UnsafeArchiveError) as err:
        extract(arc, layout / "root" / "out")
    assert repr(name) in str(err.value) and fragment in str(err.value)
    assert tree(layout) == before
    assert not Path("/tmp/genre_cli_zip_abs_evil").exists()


def test_not_an_archive_and_truncated_archive(layout: Path):
    junk = layout / "archives" / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive" * 10)
    with pytest.raises(DatasetError, match="not a tar or zip"):
        extract(junk, layout / "root" / "out")
    good = make_tar(layout / "archives" / "t.tar.gz", [(f"f{i}", bytes(5000) + bytes([i])) for i in range(20)])
    cut = layout / "archives" / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DatasetError):
        extract(cut, layout / "root" / "out")
    assert tree(layout / "root") == set()


def test_zip_fifo_member_is_refused(layout: Path):
    arc = layout / "archives" / "fifo.zip"
    info = zipfile.ZipInfo("Data/pipe")
    info.create_system = 3
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr(info, b"")
    with pytest.raises(UnsafeArchiveError, match="Data/pipe"):
        extract(arc, layout / "root" / "out")
    assert tree(layout / "root") == set()
