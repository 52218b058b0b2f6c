"""Shared fixtures and helpers: generated audio datasets (no network, no committed binaries),
:func:`genre` (the command line run in-process), and the guard that keeps tests inside their
temporary directories.

The guard
---------
Tests never write outside their own temporary directories (not into the checkout, not into
the directory pytest was started from). Two things enforce it:

* every test runs with ``GENRE_WORKDIR`` and ``GENRE_DATA`` pointing into pytest's temporary
  directory, so a command given no ``--workdir`` / ``--root`` cannot default to
  ``./genre-work`` or ``~/.cache/genre/data``;
* the files of the checkout (pytest's rootdir) and of the starting directory are listed
  (path, size, mtime) before and after each test; a test that adds, changes or removes one
  is named in a report at the end and the session fails (exit code 1). Caches, ``.git``,
  ``.venv`` and ``*.egg-info`` are not watched. Listing the ~200 files takes a few
  milliseconds, once per test.
"""

from __future__ import annotations

import csv
import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data"


# ----------------------------------------------------------------------------- the write guard

#: Directory names never watched (caches, virtual environments, version control).
_UNWATCHED_DIRS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
#: Depth to which the starting directory is watched when it lies outside the checkout.
_CWD_DEPTH = 3
_CWD_MAX_ENTRIES = 20000


def _watched(name: str, is_dir: bool) -> bool:
    if is_dir:
        return name not in _UNWATCHED_DIRS and not name.endswith(".egg-info")
    return name != ".git" and not name.endswith((".pyc", ".pyo"))


def _listing(root: Path, *, skip: tuple[Path, ...] = (), depth: int | None = None, limit: int | None = None) -> dict[str, tuple]:
    """``{path: (size, mtime_ns)}`` of the files (and ``{path/: ()}`` of the folders) under ``root``."""
    out: dict[str, tuple] = {}
    skip_s = {str(p) for p in skip}
    stack = [(str(root), 0)]
    while stack:
        here, level = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if _watched(e.name, True) and e.path not in skip_s:
                    out[e.path + os.sep] = ()
                    if depth is None or level + 1 < depth:
                        stack.append((e.path, level + 1))
            elif _watched(e.name, False):
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                out[e.path] = (st.st_size, st.st_mtime_ns)
        if limit is not None and len(out) > limit:
            break
    return out


class WriteGuard:
    """Lists the watched trees around each test and collects what changed (see the module docstring)."""

    def __init__(self, config):
        self.roots = [Path(config.rootpath).resolve()]
        cwd = Path.cwd().resolve()
        self.cwd = None if cwd == self.roots[0] or self.roots[0] in cwd.parents else cwd
        self.skip: tuple[Path, ...] = ()
        self.start: dict[str, tuple] = {}
        self.last: dict[str, tuple] = {}
        self.offences: list[tuple[str, list[str]]] = []

    def listing(self) -> dict[str, tuple]:
        out = {}
        for root in self.roots:
            out |= _listing(root, skip=self.skip)
        if self.cwd is not None and not any(r in self.cwd.parents for r in self.roots):
            out |= _listing(self.cwd, skip=self.skip, depth=_CWD_DEPTH, limit=_CWD_MAX_ENTRIES)
        return out

    @staticmethod
    def diff(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
        added = [f"{p} (new)" for p in after.keys() - before.keys()]
        changed = [f"{p} (changed)" for p in after.keys() & before.keys() if after[p] != before[p]]
        removed = [f"{p} (removed)" for p in before.keys() - after.keys()]
        return sorted(added + changed + removed)


_GUARD: WriteGuard | None = None


def pytest_configure(config):
    global _GUARD
    _GUARD = WriteGuard(config)


def pytest_sessionstart(session):
    factory = getattr(session.config, "_tmp_path_factory", None)  # pytest's tmp_path_factory (--basetemp may lie in the checkout)
    _GUARD.skip = (factory.getbasetemp().resolve(),) if factory is not None else ()
    _GUARD.start = _GUARD.last = _GUARD.listing()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = _GUARD.last  # what the previous test left (nothing runs between two tests)
    try:
        return (yield)
    finally:
        _GUARD.last = _GUARD.listing()
        changes = WriteGuard.diff(before, _GUARD.last)
        if changes:
            _GUARD.offences.append((item.nodeid, changes))


def pytest_sessionfinish(session, exitstatus):
    left = WriteGuard.diff(_GUARD.start, _GUARD.listing())
    named = {c for _, changes in _GUARD.offences for c in changes}
    stray = [c for c in left if c not in named]
    if stray:
        _GUARD.offences.append(("(outside any test: a session fixture or a process still running)", stray))
    if _GUARD.offences and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not _GUARD.offences:
        return
    tr = terminalreporter
    tr.section("tests wrote outside their temporary directories", sep="=", red=True, bold=True)
    for nodeid, changes in _GUARD.offences:
        tr.line(nodeid, red=True)
        for c in changes[:20]:
            tr.line(f"    {c}")
        if len(changes) > 20:
            tr.line(f"    ... and {len(changes) - 20} more")
    tr.line("Tests must write only under tmp_path / tmp_path_factory (pass -o, --workdir, --root, --plots).")
    tr.line("(If you edited these files yourself while the tests ran, run the tests again.)")


_ENV_IDS = itertools.count()


@pytest.fixture(autouse=True, scope="session")
def _session_genre_env(tmp_path_factory):
    """GENRE_WORKDIR and GENRE_DATA inside pytest's temporary directory for module/session fixtures."""
    base = tmp_path_factory.getbasetemp() / "genre-env" / "session"
    mp = pytest.MonkeyPatch()
    mp.setenv("GENRE_WORKDIR", str(base / "work"))
    mp.setenv("GENRE_DATA", str(base / "data"))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _genre_env(monkeypatch, tmp_path_factory):
    """Each test gets its own GENRE_WORKDIR and GENRE_DATA (created only when something is written)."""
    base = tmp_path_factory.getbasetemp() / "genre-env" / f"test{next(_ENV_IDS)}"
    monkeypatch.setenv("GENRE_WORKDIR", str(base / "work"))
    monkeypatch.setenv("GENRE_DATA", str(base / "data"))


def genre(*args, input: str | None = None):
    """Run ``genre ARGS`` in-process (typer's CliRunner); an uncaught exception fails the test."""
    from typer.testing import CliRunner

    from genre_cli.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def synth(kind: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A short signal whose class is easy to hear: low tone, high tone or noise bursts."""
    t = np.arange(int(seconds * sr)) / sr
    if kind == "low":
        f0 = rng.uniform(180, 260)
        y = 0.5 * np.sin(2 * np.pi * f0 * t)
    elif kind == "high":
        f0 = rng.uniform(2500, 3500)
        y = 0.5 * np.sin(2 * np.pi * f0 * t)
    else:
        y = 0.3 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 4 * t) > 0)
    return (y + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_folder(root: Path, *, per_label: int, seconds: float, sr: int, rng: np.random.Generator) -> Path:
    """Write a folder-per-label dataset ``root/<label>/<label><i>.wav`` of :func:`synth`
    signals: labels low, high, noise, ``per_label`` tracks each. Returns ``root``."""
    for label in ("low", "high", "noise"):
        (root / label).mkdir(parents=True)
        for i in range(per_label):
            sf.write(root / label / f"{label}{i}.wav", synth(label, seconds, sr, rng), sr)
    return root


def write_labels_table(root: Path, *, splits: tuple[str, ...]) -> Path:
    """``root/tracks.csv`` for a :func:`write_folder` dataset: columns path, style (the label),
    split (``splits[i]`` for track ``i`` of each label) and performer (``p0``/``p1`` alternating)."""
    rows = []
    for label in ("low", "high", "noise"):
        for i, split in enumerate(splits):
            rows.append({"path": f"{label}/{label}{i}.wav", "style": label, "split": split, "performer": f"p{i % 2}"})
    table = root / "tracks.csv"
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return table


def train_tiny_model(base: Path) -> Path:
    """A tiny cnn6 (16-band log-mel, 1 s windows at a 0.5 s hop, 22.05 kHz, 1 epoch) on a
    :func:`write_folder` dataset (labels low, high, noise; 4 tracks each of 2 s at 16 kHz)
    written under ``base``. Returns the model file."""
    from genre_cli import featurize, fetch, segment, train
    from genre_cli.datasets import FetchOptions
    from genre_cli.features import FeatureConfig
    from genre_cli.training.config import TrainConfig
    from genre_cli.windows import SegmentConfig

    write_folder(base / "music", per_label=4, seconds=2.0, sr=16000, rng=np.random.default_rng(0))
    idx = fetch.run("folder", source=str(base / "music"), options=FetchOptions(jobs=1, progress=False), out=base / "idx.h5")
    seg = segment.run(idx.path, config=SegmentConfig(seconds=1.0, hop=0.5), out=base / "seg.h5", jobs=1, show_progress=False)
    feat = featurize.run(seg.path, config=FeatureConfig(mel=16), out=base / "feat.h5", jobs=1, show_progress=False)
    return train.run(feat.path, config=TrainConfig(model="cnn6", epochs=1, device="cpu"), out=base / "model.h5", show_progress=False).path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """:func:`train_tiny_model`, trained once per test session."""
    return train_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def site(tmp_path_factory, request):
    """``genre serve`` on a loopback port for the browser tests: the session's tiny model, or
    ``$GENRE_SERVE_MODEL`` (a file or a built-in name)."""
    from serving import start

    model = os.environ.get("GENRE_SERVE_MODEL") or request.getfixturevalue("tiny_model")
    srv = start([model], tmp_path_factory.mktemp("serve-uploads"))
    yield srv
    srv.stop()


@pytest.fixture
def audio_folder(tmp_path: Path, rng) -> Path:
    """folder-per-label dataset: 3 labels x 6 tracks of 4 s at 16 kHz, plus a non-audio file."""
    root = write_folder(tmp_path / "music", per_label=6, seconds=4.0, sr=16000, rng=rng)
    (root / "low" / "cover.jpg").write_bytes(b"\xff\xd8not really a jpeg")
    return root
