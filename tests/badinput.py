"""A corpus of bad (and merely unusual) audio inputs, generated on the fly — no committed binaries.

Used by ``tests/test_robustness.py`` and ``bench/reliability.py``::

    from badinput import make_corpus
    corpus = make_corpus(tmp_path / "corpus")     # -> Corpus
    corpus.root / "lab" / ...                      # folder-per-label layout (one label, "lab")
    for case in corpus.cases: case.name, case.path, case.valid, case.note

Every case is one file (or link) under ``root/lab/`` so the ``folder`` dataset indexes the
whole corpus in one go, ``segment`` sees every track, and ``predict`` can be given the folder
or each path. ``valid`` says whether a correct pipeline must *process* it (True) or *skip it
with a reason* (False); ``short`` marks the 1-second clip (processed with ``--last pad``,
reported as too short otherwise).

Memory: the long file is written block by block with ``soundfile`` (one block of
``BLOCK_SECONDS`` in memory), so generating a 2-hour file stays low-memory; at 8 kHz
int16 mono it is 115 MB on disk.

Unreadable files: as root, ``chmod 000`` does not stop reads, so :func:`unreadable_hook`
patches ``os.open`` (what :func:`genre_cli.audio` uses to check readability) to fail with
``EACCES`` for that path. :func:`really_unreadable` tells whether ``chmod 000`` alone already
works (not root).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

LABEL = "lab"
BLOCK_SECONDS = 600.0
#: Length of the long file (seconds). 2 hours by default; tests may pass a shorter one.
LONG_SECONDS = 2 * 3600.0


@dataclass(frozen=True)
class Case:
    name: str  #: short id used in tables
    path: Path
    valid: bool  #: valid audio that must be processed (else: skipped with a reason)
    note: str = ""  #: what it is, for the report
    short: bool = False  #: shorter than a window: processed only with --last pad
    seconds: float = 0.0  #: duration of valid audio
    sr: int = 0  #: native rate of valid audio


@dataclass
class Corpus:
    root: Path  #: folder-per-label root (pass to ``genre fetch folder --from``)
    cases: list[Case] = field(default_factory=list)

    def __getitem__(self, name: str) -> Case:
        for c in self.cases:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def unreadable(self) -> Case:
        return self["unreadable"]


def tone(seconds: float, sr: int, *, channels: int = 1, f0: float = 220.0, seed: int = 0) -> np.ndarray:
    """A quiet tone plus a little noise, float32 [shape=(n,) or (n, channels)]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    y = (0.4 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    if channels == 1:
        return y
    return np.stack([y * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1)


def write_long(path: Path, seconds: float, sr: int = 8000, *, block_seconds: float = BLOCK_SECONDS) -> None:
    """A ``seconds``-long int16 wav written block by block (memory: one block)."""
    n_total = int(round(seconds * sr))
    block = int(block_seconds * sr)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        k = 0
        while k < n_total:
            n = min(block, n_total - k)
            t = (np.arange(k, k + n) / sr).astype(np.float64)
            f.write((0.3 * np.sin(2 * np.pi * 330.0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.1 * t)) / 1.5).astype(np.float32))
            k += n


def _truncated(path: Path, fmt: str, keep: float, sr: int = 16000) -> None:
    """A valid 4 s file of ``fmt`` written by soundfile, then cut to ``keep`` of its bytes."""
    full = path.with_name(path.name + ".full")
    sf.write(full, tone(4.0, sr, f0=440.0), sr, format=fmt)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: max(1, int(len(data) * keep))])


def make_corpus(root: str | Path, *, long_seconds: float = LONG_SECONDS, unreadable_mode: int = 0) -> Corpus:
    """Write the corpus under ``root`` (created); return its cases in a fixed order."""
    root = Path(root)
    d = root / LABEL
    d.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name, rel, valid, note, **kw) -> Path:
        p = d / rel
        cases.append(Case(name, p, valid, note, **kw))
        return p

    # --- not audio at all
    add("empty", "empty.wav", False, "0-byte file").write_bytes(b"")
    p = add("zero_frames", "zero_frames.wav", False, "valid wav header, 0 frames")
    sf.write(p, np.zeros(0, dtype=np.float32), 16000)
    p = add("header_only", "header_only.wav", False, "wav header announcing 1 s, no data (cut after the header)")
    sf.write(p, tone(1.0, 16000), 16000, subtype="PCM_16")
    p.write_bytes(p.read_bytes()[:44])
    for fmt, ext in (("MP3", "mp3"), ("OGG", "ogg"), ("FLAC", "flac")):
        if fmt == "MP3" and "MP3" not in sf.available_formats():
            continue
        _truncated(add(f"truncated_{ext}", f"truncated.{ext}", False, f"valid 4 s {ext} cut to 30 % of its bytes"), fmt, 0.3)
    add("text_as_mp3", "notes.mp3", False, "a text file named .mp3").write_text("these are my notes, not an mp3\n" * 20)
    add("random_wav", "random.wav", False, "8 kB of random bytes named .wav").write_bytes(np.random.default_rng(7).bytes(8192))
    y = tone(3.0, 16000)
    y[1000:1010] = np.nan
    sf.write(add("nan", "nan.wav", False, "float32 wav with NaN samples"), y, 16000, subtype="FLOAT")
    y = tone(3.0, 16000)
    y[2000] = np.inf
    y[2001] = -np.inf
    sf.write(add("inf", "inf.wav", False, "float32 wav with +/-Inf samples"), y, 16000, subtype="FLOAT")
    y = tone(3.0, 16000) * 32767.0  # int16 values written as floats: overflows log features
    sf.write(add("unscaled", "unscaled.wav", False, "float32 wav holding int16-range values (peak 32767)"), y, 16000, subtype="FLOAT")

    markup = add("markup_path", "odd [/]bad take.wav", False, "random bytes under a path holding '[/]' (rich markup)")
    markup.parent.mkdir(parents=True, exist_ok=True)
    markup.write_bytes(np.random.default_rng(8).bytes(4096))

    # --- unusual but valid audio
    sf.write(add("silence", "silence.wav", True, "3 s of digital silence", seconds=3.0, sr=16000), np.zeros(48000, np.float32), 16000)
    sf.write(add("dc", "dc.wav", True, "3 s of constant 0.5 (DC)", seconds=3.0, sr=16000), np.full(48000, 0.5, np.float32), 16000)
    sf.write(add("8ch", "eight_channels.wav", True, "8 channels, 3 s", seconds=3.0, sr=16000), tone(3.0, 16000, channels=8), 16000)
    sf.write(add("192k", "hi_rate_192k.wav", True, "192 kHz, 3 s", seconds=3.0, sr=192000), tone(3.0, 192000), 192000, subtype="PCM_24")
    sf.write(add("8k", "lo_rate_8k.wav", True, "8 kHz, 3 s", seconds=3.0, sr=8000), tone(3.0, 8000), 8000)
    sf.write(add("1s", "one_second.wav", True, "a 1-second clip", short=True, seconds=1.0, sr=16000), tone(1.0, 16000), 16000)
    uni = add("unicode", "ünïcødé dir ♫/[live] träck 01 – ñ.wav", True, "unicode, spaces and [brackets] in the path", seconds=3.0, sr=16000)
    uni.parent.mkdir(parents=True, exist_ok=True)
    sf.write(uni, tone(3.0, 16000, f0=300.0), 16000)
    hours = long_seconds / 3600
    write_long(
        add("long", "long_8k.wav", True, f"{hours:g} h at 8 kHz (written in blocks)", seconds=long_seconds, sr=8000), long_seconds, 8000
    )

    # --- links, special files, permissions
    loop = d / "loop_dir"
    loop.symlink_to("..", target_is_directory=True)  # directory symlink pointing to its parent
    self_link = add("self_symlink", "self_link.wav", False, "file symlink pointing to itself")
    self_link.symlink_to(self_link.name)
    os.mkfifo(add("fifo", "fifo.wav", False, "a named pipe (FIFO) named .wav; opening it would block"))
    p = add("unreadable", "unreadable.wav", False, "chmod 000 (root: open() fails by injection)", seconds=3.0, sr=16000)
    sf.write(p, tone(3.0, 16000), 16000)
    p.chmod(unreadable_mode)
    return Corpus(root=root, cases=cases)


#: Reason (regular expression) each invalid case must be reported with, by any stage.
REASONS = {
    "empty": r"empty file",
    "zero_frames": r"no audio samples",
    "header_only": r"no audio samples",
    "truncated_mp3": r"truncated or corrupt \(decoded",
    "truncated_ogg": r"no audio samples",
    "truncated_flac": r"lost sync|truncated",
    "text_as_mp3": r"not a recognised audio format",
    "random_wav": r"not a recognised audio format",
    "markup_path": r"not a recognised audio format",
    "nan": r"NaN or Inf",
    "inf": r"NaN or Inf",
    "unscaled": r"far outside \[-1, 1\]",
    "self_symlink": r"symbolic link loop",
    "fifo": r"not a regular file \(a named pipe\)",
    "unreadable": r"cannot be read \(Permission denied",
}
#: Invalid cases whose header is fine: ``fetch`` (header probe only) indexes them as ok and
#: ``segment`` / ``predict`` (which decode) skip them.
HEADER_OK = frozenset({"truncated_mp3", "truncated_flac", "nan", "inf", "unscaled"})


def really_unreadable(path: Path) -> bool:
    """True when opening ``path`` fails for this process (chmod 000 as non-root)."""
    try:
        os.close(os.open(path, os.O_RDONLY))
    except PermissionError:
        return True
    return False


@contextlib.contextmanager
def unreadable_hook(paths: list[Path]) -> Iterator[None]:
    """Make ``os.open`` and ``open`` of ``paths`` fail with EACCES in this process.

    Stands in for ``chmod 000`` when running as root (root ignores file modes). Only what
    opens files through Python is affected; :mod:`genre_cli.audio` checks readability with
    ``os.open`` before handing a path to libsndfile, so that is where the refusal shows.
    """
    import builtins

    targets = {os.path.realpath(p) for p in paths}
    real_os_open, real_open = os.open, builtins.open

    def denied(file) -> bool:
        return isinstance(file, (str, bytes, os.PathLike)) and os.path.realpath(os.fsdecode(file)) in targets

    def fake_os_open(file, flags, *a, **k):
        if denied(file):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(file))
        return real_os_open(file, flags, *a, **k)

    def fake_open(file, *a, **k):
        if denied(file):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(file))
        return real_open(file, *a, **k)

    os.open, builtins.open = fake_os_open, fake_open
    try:
        yield
    finally:
        os.open, builtins.open = real_os_open, real_open


def restore_modes(corpus: Corpus) -> None:
    """Make the unreadable file removable/readable again (pytest cleans tmp dirs itself)."""
    with contextlib.suppress(OSError):
        corpus.unreadable.path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def tiny_pipeline(d: Path, *, sr: int = 8000) -> dict[str, Path]:
    """idx/seg/feat/model of a tiny 2-label dataset (2 s windows at ``sr``, mel 16, 1-epoch cnn6)
    under ``d``: the throwaway model the robustness tests and ``bench/reliability.py`` predict with."""
    from genre_cli import featurize, fetch, segment, train
    from genre_cli.datasets import FetchOptions
    from genre_cli.features import FeatureConfig
    from genre_cli.training.config import TrainConfig
    from genre_cli.windows import SegmentConfig

    from conftest import synth

    rng = np.random.default_rng(0)
    for label in ("low", "high"):
        (d / "music" / label).mkdir(parents=True)
        for i in range(3):
            sf.write(d / "music" / label / f"{i}.wav", synth(label, 4.0, sr, rng), sr)
    idx = fetch.run("folder", source=str(d / "music"), options=FetchOptions(jobs=1, progress=False), out=d / "idx.h5")
    seg = segment.run(idx.path, config=SegmentConfig(sr=sr, seconds=2.0), out=d / "seg.h5", jobs=1, show_progress=False)
    feat = featurize.run(seg.path, config=FeatureConfig(mel=16), out=d / "feat.h5", jobs=1, show_progress=False)
    model = train.run(feat.path, config=TrainConfig(model="cnn6", epochs=1, device="cpu"), out=d / "model.h5", show_progress=False)
    return {"dir": d, "idx": idx.path, "seg": seg.path, "feat": feat.path, "model": model.path}
