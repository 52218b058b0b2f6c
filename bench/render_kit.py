#!/usr/bin/env python
"""Re-render groove-styles performances with another drum kit (a General-MIDI soundfont).

groove-styles is Magenta's Groove MIDI Dataset (Gillick, Roberts, Engel, Eck & Bamman, ICML 2019;
CC BY 4.0, attribution required) rendered with FluidSynth and the FluidR3 GM soundfont. A model
trained on it may learn the sound of that one kit instead of the style; rendering the same MIDI
performances with another soundfont and evaluating on them measures how much.

This script renders the tracks of one split (default: ``test``) exactly as the originals were
made, with only the soundfont changed: ``fluidsynth -ni -g 0.7 -r 22050`` (the originals'
gain: a FluidR3 render with it matches the shipped audio to a waveform correlation of 0.99),
channel mean to mono, the first 30 s, Ogg Vorbis. The layout is the original's
(``<style>/<file>.ogg``) plus a ``tracks.csv`` with the original columns (only the rendered
rows), a ``README.md`` saying how it was made, and the Groove MIDI licence. The audio is derived
data: keep it out of git and regenerate it with this script.

Usage (Debian: ``apt-get install fluidsynth musescore-general-soundfont-small``)::

    python bench/render_kit.py --soundfont /usr/share/sounds/sf3/MuseScore_General.sf3 \\
        --out /tmp/groove-musescore --split test
    genre fetch folder --from /tmp/groove-musescore --labels /tmp/groove-musescore/tracks.csv \\
        --label-column style --group-by drummer -o groove-musescore.h5

Exit status 0 when every track rendered, 1 when some failed (listed), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

DATA = Path(os.environ.get("GENRE_SHARED_DATA", "/work/shared/data")) / "groove-styles"
SR, SECONDS, GAIN = 22050, 30.0, 0.7


def render_one(midi: Path, soundfont: Path, out: Path, *, gain: float = GAIN, sr: int = SR, seconds: float = SECONDS) -> None:
    """Render ``midi`` with ``soundfont`` to a mono Ogg Vorbis file ``out`` (first ``seconds`` s)."""
    with tempfile.TemporaryDirectory(prefix="render-kit-") as tmp:
        wav = Path(tmp) / "out.wav"
        cmd = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sr), "-F", str(wav), str(soundfont), str(midi)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0 or not wav.exists():
            raise RuntimeError(f"fluidsynth failed ({res.returncode}): {res.stderr.strip()[-300:]}")
        x, got_sr = sf.read(wav, dtype="float32", always_2d=True)
    if got_sr != sr:
        raise RuntimeError(f"fluidsynth wrote {got_sr} Hz, asked for {sr}")
    mono = x.mean(axis=1)[: int(round(seconds * sr))]
    if not np.any(mono):
        raise RuntimeError("silent render (does the soundfont have a General-MIDI drum kit on bank 128?)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.tmp.ogg")
    sf.write(tmp_out, mono, sr, format="OGG", subtype="VORBIS")
    os.replace(tmp_out, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--soundfont", type=Path, required=True, help="General-MIDI soundfont (.sf2/.sf3)")
    ap.add_argument("--out", type=Path, required=True, help="output folder (created)")
    ap.add_argument("--split", default="test", help="split(s) of tracks.csv to render, comma-separated, or 'all' (default test)")
    ap.add_argument("--data", type=Path, default=DATA, help=f"groove-styles folder with tracks.csv and midi/ (default {DATA})")
    ap.add_argument("--gain", type=float, default=GAIN, help=f"fluidsynth gain (default {GAIN}, as the originals)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel fluidsynth processes (default 1)")
    ap.add_argument("--force", action="store_true", help="re-render files that exist")
    args = ap.parse_args(argv)
    if shutil.which("fluidsynth") is None:
        print("fluidsynth not found (Debian: apt-get install fluidsynth)", file=sys.stderr)
        return 2
    if not args.soundfont.is_file():
        print(f"no soundfont at {args.soundfont}", file=sys.stderr)
        return 2
    table = args.data / "tracks.csv"
    with open(table, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    splits = None if args.split == "all" else set(args.split.split(","))
    rows = [r for r in rows if splits is None or r["split"] in splits]
    if not rows:
        print(f"no tracks of split {args.split!r} in {table}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)

    def work(r: dict) -> str | None:
        dst = args.out / r["path"]
        if dst.exists() and not args.force:
            return None
        try:
            render_one(args.data / "midi" / r["source_midi"], args.soundfont, dst, gain=args.gain)
        except Exception as exc:  # noqa: BLE001 — report every track, fail at the end
            return f"{r['path']}: {exc}"
        return None

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        failed = [m for m in pool.map(work, rows) if m]
    with open(args.out / "tracks.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(r for r in rows if (args.out / r["path"]).exists())
    lic = args.data / "LICENSE-groove-midi.txt"
    if lic.exists():
        shutil.copy(lic, args.out / lic.name)
    (args.out / "README.md").write_text(
        f"# groove-styles, {args.split} split, re-rendered with {args.soundfont.name}\n\n"
        "Derived from Magenta's Groove MIDI Dataset (Gillick, Roberts, Engel, Eck & Bamman, ICML 2019),\n"
        "CC BY 4.0 (LICENSE-groove-midi.txt): attribution required. Made by `bench/render_kit.py`:\n"
        f"`fluidsynth -ni -g {args.gain} -r {SR}` with `{args.soundfont}`, channel mean to mono, first {SECONDS:g} s,\n"
        "Ogg Vorbis; same layout and tracks.csv columns as the FluidR3 originals.\n"
    )
    print(f"rendered {len(rows) - len(failed)}/{len(rows)} tracks of split {args.split} with {args.soundfont.name} -> {args.out}")
    for m in failed:
        print(f"FAILED: {m}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
