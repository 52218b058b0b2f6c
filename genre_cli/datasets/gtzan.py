"""``gtzan``: the GTZAN genre collection (Tzanetakis & Cook 2002), artist-filtered split.

1000 clips × 30 s, 10 genres × 100, 22050 Hz mono 16-bit, collected 2000–2001 from CDs,
radio and microphone recordings.

Sources (``source``)
--------------------
* ``None`` — download ``genres.tar.gz`` from :data:`REMOTES`, tried in order, verified
  against :data:`ARCHIVE_MD5`, into ``root/gtzan/``;
* an ``http(s)://`` URL — that archive (verified with ``options.checksum``, or with
  :data:`ARCHIVE_MD5` when it is one of the known mirrors; otherwise its checksum is
  recorded in ``info["archive_checksum"]``);
* a local archive — the original ``genres.tar.gz`` (``genres/<g>/<g>.000NN.au``) or the Kaggle
  zip (``Data/genres_original/<g>/<g>.000NN.wav``);
* an already-extracted folder in either layout (indexed in place, nothing copied).

Archives are extracted safely (:func:`genre_cli.archive.extract`) to
``root/gtzan/<archive name>-<checksum prefix>/``; an existing extraction is reused.

Split
-----
Default (and ``"official"``): the artist-filtered split of Kereliuk, Sturm & Larsen (2015),
443 train / 197 validation / 290 test, shipped in ``genre_cli/data/gtzan/``. The 70 other
clips (repeats, versions, distortions: Sturm 2012/2013) stay in the index with
``status="excluded"``, ``reason="not in the artist-filtered split"`` and split ``""``.
``"random"``: every decodable clip (the 70 included, as in the literature that uses random
splits) gets a seeded split stratified by genre, and ``info["warnings"]`` says that random
GTZAN splits inflate accuracy. ``group`` stays ``""``: the index has no artist column (the
artist filter is encoded in the split lists, not as per-clip artists).

Options: ``split``, ``folds`` (stratified by track, with a warning: no artist column), ``seed``
(only with a random split or folds), ``checksum``, ``offline``. ``labels_csv``/``label_column``/
``split_column`` and ``group_by`` are refused (:func:`genre_cli.datasets.check_options`): GTZAN's
labels are its folder names and it has no artist per clip.

A clip that does not decode (in the Kaggle copy ``jazz.00054.wav``) is kept with
``status="corrupt"`` and the decoder's reason; its split from the list is recorded as is.

Licence
-------
None published. The audio is copyrighted by its original owners; the collection has been
distributed by its author for research use only ("no copyright permission", per the
original page). mirdata: "Unfortunately we couldn't find the license information".

Citation
--------
G. Tzanetakis and P. Cook, "Musical genre classification of audio signals", IEEE
Transactions on Speech and Audio Processing 10(5):293–302, 2002.
Split: C. Kereliuk, B. L. Sturm and J. Larsen, "Deep learning and music adversaries", IEEE
Transactions on Multimedia 17(11):2059–2071, 2015. Faults: B. L. Sturm, "The GTZAN dataset: its
contents, its faults, their effects on evaluation, and its future use", arXiv:1306.1461, 2013.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from genre_cli.archive import archive_kind, extract
from genre_cli.audio import AUDIO_EXTENSIONS
from genre_cli.datasets import DATASETS, FetchOptions, TrackIndex
from genre_cli.datasets.folder import apply_computed_split, apply_folds, finish_index, probe_rows
from genre_cli.download import download, file_checksum, parse_checksum
from genre_cli.errors import InputError, SourceError, UsageError

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")

ARCHIVE_NAME = "genres.tar.gz"
#: md5 of the original ``genres.tar.gz`` (as recorded by mirdata and torchaudio).
ARCHIVE_MD5 = "md5:5b3d6dddb579ab49814ab86dba69e7c7"


@dataclass(frozen=True)
class Remote:
    url: str
    note: str


#: Mirrors of the original archive, tried in order.
REMOTES: tuple[Remote, ...] = (
    Remote(
        "https://huggingface.co/datasets/marsyas/gtzan/resolve/main/data/genres.tar.gz",
        "Hugging Face dataset marsyas/gtzan: the original archive, byte-identical (same md5)",
    ),
    Remote(
        "http://opihi.cs.uvic.ca/sound/genres.tar.gz",
        "the original host, as referenced by torchaudio and mirdata; offline for years, tried last in case it returns",
    ),
)

LICENSE = "no licence published; copyrighted audio distributed by the author for research use"
CITATION = (
    "G. Tzanetakis and P. Cook, Musical genre classification of audio signals, IEEE TSAP 10(5), 2002; "
    "split: C. Kereliuk, B. L. Sturm and J. Larsen, Deep learning and music adversaries, IEEE TMM 17(11), 2015"
)
SPLIT_FILES = {"train": "train_filtered.txt", "validation": "valid_filtered.txt", "test": "test_filtered.txt"}
EXCLUDED_REASON = "not in the artist-filtered split"
RANDOM_WARNING = (
    "random GTZAN splits inflate accuracy (by roughly 20 points on this collection): GTZAN repeats artists "
    "and holds exact repeats and versions of the same recordings (Sturm 2013), which a random split puts on "
    "both sides. Report the artist-filtered split (the default) for honest numbers."
)

_CLIP = re.compile(r"^(?P<genre>[a-z]+)\.(?P<num>\d{5})\.(?P<ext>au|wav)$", re.IGNORECASE)


def filtered_split() -> dict[str, str]:
    """``{"blues.00012": "test", ...}``: the 930 clips of the artist-filtered split."""
    out: dict[str, str] = {}
    base = resources.files("genre_cli").joinpath("data", "gtzan")
    for split, fname in SPLIT_FILES.items():
        for line in base.joinpath(fname).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                out[clip_id(line)] = split
    return out


def clip_id(name: str) -> str:
    """``blues/blues.00012.wav`` -> ``blues.00012``: folders and an audio extension dropped
    (the ids of split lists and of the Kaggle tables' ``filename`` column)."""
    stem = name.strip().replace("\\", "/").rsplit("/", 1)[-1]
    base, dot, ext = stem.rpartition(".")
    return base if dot and f".{ext.lower()}" in AUDIO_EXTENSIONS else stem


_CLIP_ID = re.compile(r"^[a-z]+\.\d{5}$")


def is_gtzan(ids: list[str]) -> bool:
    """True when every id looks like a GTZAN clip id (``blues.00012``)."""
    return bool(ids) and all(_CLIP_ID.match(i) for i in ids)


@DATASETS.register(
    "gtzan",
    description="GTZAN genre collection (1000 clips, 10 genres), artist-filtered split (443/197/290)",
    source="URL, local genres.tar.gz / Kaggle zip, or extracted folder; default: the known mirrors",
    remotes=[r.url for r in REMOTES],
    checksum=ARCHIVE_MD5,
    license=LICENSE,
    citation=CITATION,
    options=("split", "folds", "seed", "val_fraction", "test_fraction", "checksum"),
    random_split=lambda source, options: options.split == "random",
)
def gtzan(*, source: str | None, root: Path, options: FetchOptions) -> TrackIndex:
    """Fetch (when needed), extract and index GTZAN (see the module docstring)."""
    mode = options.split
    info: dict[str, Any] = {"dataset": "gtzan", "warnings": [], "license": LICENSE, "citation": CITATION}
    if mode == "random" or options.folds >= 2:
        info["seed"] = int(options.seed)
    folder = _materialize(source, Path(root).expanduser(), options, info)
    genre_root = _find_genre_root(folder)
    info["audio_root"] = str(genre_root)
    rows, skipped = _collect(genre_root)
    info["skipped_files"] = len(skipped)
    info["skipped_examples"] = skipped[:10]
    if not rows:
        raise SourceError(f"{genre_root}: no GTZAN clips (<genre>/<genre>.000NN.au|wav) found")
    exts = {Path(r["path"]).suffix.lower() for r in rows}
    info["layout"] = "original (.au)" if exts == {".au"} else "kaggle (.wav)" if exts == {".wav"} else "mixed"

    probe_rows(rows, genre_root, jobs=options.jobs, progress=options.progress)
    notes: list[str] = info["warnings"]
    if mode == "random":
        notes.extend(apply_computed_split(rows, options, use_groups=False))
        notes.append(RANDOM_WARNING)
        info["split_method"] = f"random, stratified by track (seed {options.seed})"
    else:
        listed = filtered_split()
        for r in rows:
            split = listed.get(r["track_id"], "")
            r["split"] = split
            if not split and r["status"] == "ok":
                r.update(status="excluded", reason=EXCLUDED_REASON)
        present = {r["track_id"] for r in rows}
        missing = sorted(set(listed) - present)
        info["n_missing"] = len(missing)
        if missing:
            notes.append(
                f"{len(missing)} of the {len(listed)} clips of the artist-filtered split are missing from {genre_root} "
                f"(e.g. {', '.join(missing[:3])}); split sizes will differ from 443/197/290"
            )
        info["split_method"] = "artist-filtered (Kereliuk, Sturm & Larsen 2015)"
    if options.folds >= 2:
        notes.append("GTZAN has no artist column here: folds are stratified by track only, so an artist can be in several folds")
        info["folds"] = int(options.folds)
    apply_folds(rows, options, use_groups=False)
    corrupt = [r["track_id"] for r in rows if r["status"] == "corrupt"]
    if corrupt:
        notes.append(
            f"{len(corrupt)} clip(s) do not decode and are marked corrupt: {', '.join(corrupt[:5])}{' ...' if len(corrupt) > 5 else ''}"
        )
    return finish_index(rows, root=genre_root, info=info)


# -- getting the audio onto disk -----------------------------------------------------------------


def _is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme.lower() in ("http", "https")


def _materialize(source: str | None, root: Path, options: FetchOptions, info: dict[str, Any]) -> Path:
    """Return a folder holding the extracted collection (downloading/extracting as needed)."""
    known = [r.url for r in REMOTES]
    if source is None or _is_url(str(source)):
        urls = known if source is None else [str(source)]
        expected = options.checksum or (ARCHIVE_MD5 if source is None or str(source) in known else None)
        name = (
            ARCHIVE_NAME if source is None else (Path(urllib.parse.unquote(urllib.parse.urlsplit(str(source)).path)).name or ARCHIVE_NAME)
        )
        info["source"] = "default mirrors" if source is None else str(source)
        result = download(urls, root / "gtzan" / name, checksum=expected, progress=options.progress, offline=options.offline)
        info.update(archive=str(result.path), archive_checksum=result.checksum, downloaded_from=result.url or "(already present)")
        return _extract_once(result.path, result.checksum, root)

    path = Path(source).expanduser()
    info["source"] = str(path)
    if path.is_dir():
        if options.checksum:
            raise UsageError(f"--checksum applies to an archive or a download; {path} is a folder", hint="drop --checksum")
        return path.resolve()
    if not path.exists():
        raise InputError(f"{path}: no such file or folder (GTZAN source must be a URL, an archive or a folder)")
    if archive_kind(path) is None:
        raise InputError(f"{path}: not a tar or zip archive (GTZAN source must be a URL, an archive or a folder)")
    wanted = parse_checksum(options.checksum)
    algo = wanted[0] if wanted else "md5"
    got = file_checksum(path, algo)
    if wanted and got != f"{wanted[0]}:{wanted[1]}":
        raise SourceError(f"{path}: checksum {got} does not match the expected {wanted[0]}:{wanted[1]}")
    info.update(archive=str(path.resolve()), archive_checksum=got)
    if got == ARCHIVE_MD5:
        info["archive_note"] = "the original genres.tar.gz (md5 matches)"
    return _extract_once(path, got, root)


def _extract_once(archive: Path, checksum: str, root: Path) -> Path:
    """Extract into ``root/gtzan/<name>-<digest[:8]>`` unless that folder already exists."""
    name = archive.name
    for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    digest = checksum.partition(":")[2][:8] or "unknown"
    dest = root / "gtzan" / f"{name}-{digest}"
    if dest.is_dir():  # extraction is atomic: an existing folder is complete
        return dest
    return extract(archive, dest)


def _find_genre_root(folder: Path) -> Path:
    """The folder whose sub-folders are the genres (``genres/``, ``Data/genres_original/``, ...)."""

    def has_clips(gdir: Path) -> bool:
        try:
            return gdir.is_dir() and any(_CLIP.match(f.name) for f in gdir.iterdir())
        except OSError:
            return False

    def score(d: Path) -> int:  # genre folders holding clips (Kaggle's images_original/<genre>/ holds none)
        return sum(1 for g in GENRES if has_clips(d / g))

    frontier = [folder]
    best: tuple[int, Path] | None = None
    for _depth in range(4):
        nxt: list[Path] = []
        for d in frontier:
            s = score(d)
            if s and (best is None or s > best[0]):
                best = (s, d)
            try:
                nxt.extend(sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in GENRES))
            except OSError:
                continue
        if best is not None and best[0] == len(GENRES):
            break
        frontier = nxt
    if best is None:
        raise SourceError(
            f"{folder}: no GTZAN layout found; expected genres/<genre>/<genre>.000NN.au "
            "(original archive) or Data/genres_original/<genre>/<genre>.000NN.wav (Kaggle)"
        )
    return best[1]


def _collect(genre_root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for entry in sorted(genre_root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            skipped.append(entry.name)
        elif entry.is_dir() and entry.name not in GENRES:
            skipped.append(f"{entry.name}/")
    for genre in GENRES:
        gdir = genre_root / genre
        if not gdir.is_dir():
            continue
        for f in sorted(gdir.iterdir()):
            if f.name.startswith("."):
                continue
            m = _CLIP.match(f.name)
            if not f.is_file() or m is None or m.group("genre").lower() != genre:
                skipped.append(f"{genre}/{f.name}")
                continue
            track_id = f"{genre}.{m.group('num')}"
            if track_id in seen:  # both .au and .wav of one clip: keep the first (sorted: .au)
                skipped.append(f"{genre}/{f.name}")
                continue
            seen.add(track_id)
            rows.append(
                {
                    "track_id": track_id,
                    "path": f"{genre}/{f.name}",
                    "label_name": genre,
                    "group": "",
                    "split": "",
                    "status": "ok",
                    "reason": "",
                }
            )
    return rows, skipped
