"""The ``genre`` command line: parses options, calls the stage functions, prints results.

Only this module prints and exits. Exit codes: 0 success; 1 a failed run; 2 bad usage or
bad input (unknown name, missing or unusable file); 130 interrupted (Ctrl-C).
Heavy libraries (torch, librosa, sklearn) are imported inside the commands, never at
import time, so ``genre --help`` is fast.

Results go to stdout (artifact paths, predictions, JSON); notices, progress and errors go
to stderr, so the output pipes well.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="genre",
    help="Music genre classification: fetch → segment → featurize → train → evaluate → predict.\n\n"
    "Every stage writes a self-describing HDF5 artifact and is skipped when its inputs and parameters are unchanged.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_STATE = {"debug": False}

WorkdirOpt = Annotated[Optional[Path], typer.Option("--workdir", help="Work directory for derived outputs [env: GENRE_WORKDIR; default ./genre-work].", show_default=False)]
OutOpt = Annotated[Optional[Path], typer.Option("-o", "--out", help="Output artifact (default: a name derived from the parameters in the work directory).", show_default=False)]
ForceOpt = Annotated[bool, typer.Option("--force", help="Rerun even if the output is up to date.")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="Say what would run; write nothing.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel workers.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N (cuda without a GPU is an error).")]


def _err():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def handle_errors(fn):
    """Turn GenreError into a red one-line message and its exit code (traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from genre_cli.errors import GenreError

        try:
            return fn(*args, **kwargs)
        except GenreError as exc:
            if _STATE["debug"]:
                raise
            con = _err()
            con.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
            if exc.hint:
                con.print(f"[dim]hint: {exc.hint}[/]")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _err().print("[yellow]interrupted: nothing half-written was kept[/]")
            raise typer.Exit(130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        from genre_cli import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def main_callback(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    _STATE["debug"] = debug


def _report_stage(result) -> None:
    """One line per stage on stderr; the artifact path on stdout."""
    con = _err()
    if result.status == "skipped":
        con.print(f"[dim]• {result.stage}: up to date, skipped ({result.path}); --force reruns[/]")
    elif result.status == "would run":
        con.print(f"[cyan]• {result.stage}: would run → {result.path}[/]")
    else:
        con.print(f"[green]✓ {result.stage}[/] → {result.path}")
    for w in result.warnings:
        con.print(f"[yellow]warning:[/] {w}")


# ----------------------------------------------------------------------------- fetch


@app.command()
@handle_errors
def fetch(
    dataset: Annotated[str, typer.Argument(help="Dataset name: demo, folder, gtzan (see --list).")] = "demo",
    source: Annotated[Optional[str], typer.Option("--from", help="URL, archive or folder to take the dataset from.", show_default=False)] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="Data root for downloads [env: GENRE_DATA; default ~/.cache/genre/data].", show_default=False)] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="CSV with a `path` column (relative to --from) and labels.", show_default=False)] = None,
    label_column: Annotated[str, typer.Option("--label-column", help="Label column of --labels.")] = "label",
    split_column: Annotated[str, typer.Option("--split-column", help="Split column of --labels (used when present).")] = "split",
    group_by: Annotated[Optional[str], typer.Option("--group-by", help="Column naming a group (artist, performer): no group on two sides.", show_default=False)] = None,
    folds: Annotated[int, typer.Option("--folds", min=0, help="Also assign K group-aware stratified folds.")] = 0,
    split: Annotated[str, typer.Option("--split", help="default (dataset's honest split) | random (stratified by track, seeded) | official.")] = "default",
    seed: Annotated[int, typer.Option("--seed", help="Seed of random splits.")] = 0,
    checksum: Annotated[Optional[str], typer.Option("--checksum", help="Expected md5:HEX or sha256:HEX of a downloaded archive.", show_default=False)] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Never download; use what is on disk.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the registered datasets and exit.")] = False,
    jobs: JobsOpt = 2,
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
) -> None:
    """Index a dataset (labels, groups, splits by track) into an HDF5 track index.

    Examples: `genre fetch demo`; `genre fetch gtzan --from genres.tar.gz`;
    `genre fetch folder --from music/ --labels tracks.csv --label-column style --group-by drummer -o idx.h5`
    """
    from genre_cli import fetch as fetch_stage
    from genre_cli.datasets import DATASETS, FetchOptions, list_datasets

    if list_:
        for name in list_datasets():
            typer.echo(f"{name}\t{DATASETS.meta(name).get('description', '')}")
        return
    options = FetchOptions(labels_csv=labels, label_column=label_column, split_column=split_column, group_by=group_by,
                           folds=folds, split=split, seed=seed, jobs=jobs, offline=offline, checksum=checksum, progress=sys.stderr.isatty())
    result = fetch_stage.run(dataset, source=source, root=root, options=options, out=out, workdir=workdir, force=force, dry_run=dry_run)
    _report_stage(result)
    if result.ran:
        _print_fetch_summary(result.summary)
    typer.echo(str(result.path))


def _print_fetch_summary(summary: dict) -> None:
    from rich.table import Table

    counts = summary["counts"]
    splits = sorted({s for c in counts.values() for s in c}, key=lambda s: ("train", "validation", "test", "-").index(s) if s in ("train", "validation", "test", "-") else 9)
    table = Table(title=f"{summary['n_tracks']} tracks", title_justify="left")
    table.add_column("label")
    for s in splits:
        table.add_column(s, justify="right")
    table.add_column("total", justify="right")
    for label in sorted(counts):
        row = [counts[label].get(s, 0) for s in splits]
        table.add_row(label, *map(str, row), str(sum(row)))
    con = _err()
    con.print(table)
    bad = ", ".join(f"{n} {k}" for k, n in summary.get("n_bad", {}).items())
    con.print(f"skipped: {summary.get('skipped_files', 0)} non-audio files" + (f"; not ok: {bad}" if bad else ""))


# ----------------------------------------------------------------------------- segment


@app.command()
@handle_errors
def segment(
    index: Annotated[Path, typer.Argument(help="Track index from `genre fetch`.")],
    seconds: Annotated[float, typer.Option("--seconds", help="Window length in seconds.")] = 3.0,
    hop: Annotated[Optional[float], typer.Option("--hop", help="Hop between windows in seconds [default: --seconds, no overlap].", show_default=False)] = None,
    frames: Annotated[int, typer.Option("--frames", min=0, help="Window length in STFT frames instead (e.g. 128), at --frame-hop.")] = 0,
    frame_hop: Annotated[int, typer.Option("--frame-hop", min=1, help="STFT hop (samples) used by --frames.")] = 512,
    random_k: Annotated[int, typer.Option("--random", min=0, help="K non-overlapping windows per track at random (seeded) positions.")] = 0,
    first: Annotated[int, typer.Option("--first", min=0, help="Only the first N windows of each track.")] = 0,
    last: Annotated[str, typer.Option("--last", help="Last partial window: drop | pad (zero-padded).")] = "drop",
    sr: Annotated[int, typer.Option("--sr", min=1, help="Sample rate (Hz) to resample to.")] = 22050,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --random.")] = 0,
    compress: Annotated[bool, typer.Option("--compress/--no-compress", help="Deflate-compress the stored int16 audio (about 1/3 smaller, slower).")] = True,
    audio_dtype: Annotated[str, typer.Option("--audio-dtype", help="Stored audio: int16 (exact to 1/32767) | float16 | float32 (exact decoded values, 2x disk).")] = "int16",
    jobs: JobsOpt = 2,
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
) -> None:
    """Decode tracks once (mono, resampled) and cut them into windows.

    Examples: [bold]--seconds 3 --hop 1.5[/] (overlapping); [bold]--random 5 --seconds 3[/] (seed 001);
    [bold]--first 10 --seconds 5[/] (seed 002); [bold]--frames 128 --frame-hop 512[/] (seed 004).
    """
    from genre_cli import segment as seg_stage
    from genre_cli.errors import UsageError

    if random_k and first:
        raise UsageError("--random and --first are exclusive")
    policy, count = ("random", random_k) if random_k else ("first", first) if first else ("fixed", 0)
    cfg = seg_stage.SegmentConfig(sr=sr, seconds=seconds, hop=hop, frames=frames, frame_hop=frame_hop, policy=policy, count=count, last=last, seed=seed)
    result = seg_stage.run(index, config=cfg, out=out, workdir=workdir, jobs=jobs, compress=compress, audio_dtype=audio_dtype, force=force, dry_run=dry_run, show_progress=True)
    _report_stage(result)
    if result.ran:
        from rich.markup import escape

        s = result.summary
        con = _err()
        con.print(f"{s['n_segments']} segments of {cfg.win} samples ({cfg.win / cfg.sr:.2f} s) from {s['n_tracks']} tracks ({s['audio_hours']:.2f} h of audio); {s['n_skipped']} tracks skipped")
        for line in s["skipped"][:10]:
            con.print(f"  [yellow]skipped[/] {escape(line)}", markup=True, highlight=False)
        if len(s["skipped"]) > 10:
            con.print(f"  … and {len(s['skipped']) - 10} more (`genre info {result.path}` lists them in /skipped)")
    typer.echo(str(result.path))


# ----------------------------------------------------------------------------- featurize


@app.command()
@handle_errors
def featurize(
    segments: Annotated[Path, typer.Argument(help="Segments artifact from `genre segment`.")],
    mel: Annotated[int, typer.Option("--mel", min=0, help="Log-mel spectrogram with N bands.")] = 0,
    stft: Annotated[bool, typer.Option("--stft", help="Log-magnitude STFT (n_fft/2+1 bins).")] = False,
    mfcc: Annotated[int, typer.Option("--mfcc", min=0, help="N MFCCs per frame.")] = 0,
    deltas: Annotated[bool, typer.Option("--deltas", help="Append MFCC deltas and delta-deltas (3N columns).")] = False,
    mfcc_frames: Annotated[Optional[str], typer.Option("--mfcc-frames", help="STEPSxN: N MFCCs averaged over STEPS equal blocks of the segment (seed 002: 30x30).", show_default=False)] = None,
    handcrafted: Annotated[bool, typer.Option("--handcrafted", help="Seed 000's 93 hand-crafted statistics.")] = False,
    kaggle: Annotated[bool, typer.Option("--kaggle", help="The 57 values of the Kaggle GTZAN table.")] = False,
    n_fft: Annotated[int, typer.Option("--n-fft", min=16, help="FFT size (samples).")] = 2048,
    hop_length: Annotated[int, typer.Option("--hop-length", min=1, help="STFT hop (samples).")] = 512,
    fmin: Annotated[float, typer.Option("--fmin", min=0, help="Lowest mel frequency (Hz).")] = 0.0,
    fmax: Annotated[Optional[float], typer.Option("--fmax", help="Highest mel frequency (Hz) [default: sr/2].", show_default=False)] = None,
    top_db: Annotated[Optional[float], typer.Option("--top-db", help="Floor dB values at max - TOP_DB per segment (librosa's power_to_db; 80 in librosa.feature.mfcc) [default: no floor, -100 dB].", show_default=False)] = None,
    power: Annotated[bool, typer.Option("--power", help="No dB: mel power and linear STFT magnitude (MFCCs stay dB-based).")] = False,
    float16: Annotated[bool, typer.Option("--float16", help="Store features as float16.")] = False,
    jobs: JobsOpt = 2,
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
) -> None:
    """Compute features for every segment; all representations share one STFT per segment.

    Examples: [bold]--mel 128 --handcrafted --mfcc 20 --jobs 2[/]; [bold]--kaggle[/]; [bold]--mfcc-frames 30x30[/].
    """
    from genre_cli import featurize as feat_stage
    from genre_cli.errors import UsageError
    from genre_cli.features import FeatureConfig

    steps_mfcc = (0, 0)
    if mfcc_frames:
        try:
            a, b = mfcc_frames.lower().split("x")
            steps_mfcc = (int(a), int(b))
        except ValueError:
            raise UsageError(f"--mfcc-frames expects STEPSxN such as 30x30, got {mfcc_frames!r}") from None
    params = {"n_fft": n_fft, "hop_length": hop_length, "mel": mel, "fmin": fmin, "fmax": fmax, "stft": stft,
              "mfcc": mfcc, "deltas": deltas, "mfcc_frames": steps_mfcc, "handcrafted": handcrafted, "kaggle": kaggle,
              "db": not power, "top_db": top_db}
    cfg = FeatureConfig.from_params(params).validate()
    result = feat_stage.run(segments, config=cfg, out=out, workdir=workdir, jobs=jobs, float16=float16, force=force, dry_run=dry_run)
    _report_stage(result)
    if result.ran:
        from rich.markup import escape

        s = result.summary
        con = _err()
        dtype = "float16" if float16 else "float32"
        shapes = ", ".join(f"{k} {tuple(v)}" for k, v in s["shapes"].items())
        con.print(f"{s['n_segments']} segments ({dtype}): {shapes}; normalisation stats over the {s['norm_split']} split ({s['n_norm_segments']} segments)")
        if s["n_skipped_tracks"]:
            con.print(f"{s['n_skipped_tracks']} tracks were skipped by `genre segment` (no segments):")
            for line in s["skipped"][:10]:
                con.print(f"  [yellow]skipped[/] {escape(line)}", markup=True, highlight=False)
    typer.echo(str(result.path))


# ----------------------------------------------------------------------------- train


def _parse_sets(items: list[str]) -> dict:
    from genre_cli.errors import UsageError

    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


@app.command()
@handle_errors
def train(
    features: Annotated[Optional[Path], typer.Argument(help="Features artifact from `genre featurize`.", show_default=False)] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model name (see --list-models).")] = "cnn6",
    list_models: Annotated[bool, typer.Option("--list-models", help="List models with their inputs and sources, and exit.")] = False,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 30,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 1e-3,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw | adam | adadelta | sgd")] = "adamw",
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="L2 / decoupled weight decay.")] = 1e-4,
    patience: Annotated[int, typer.Option("--patience", min=1, help="Early-stopping patience (epochs without val improvement).")] = 10,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="Model option KEY=VALUE (JSON value), repeatable.", show_default=False)] = None,
    device: DeviceOpt = "auto",
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
) -> None:
    """Train a registered model on the train split (validation selects the best epoch)."""
    from genre_cli.errors import UsageError

    if list_models:
        from rich.table import Table

        from genre_cli.models import list_models as names, model_info

        table = Table("model", "kind", "inputs", "source", "description")
        for name in names():
            info = model_info(name)
            table.add_row(name, info.get("kind", ""), ", ".join(info.get("inputs", ())), info.get("source", ""), info.get("description", ""))
        from rich.console import Console

        Console().print(table)
        return
    if features is None:
        raise UsageError("missing FEATURES artifact", hint="`genre train FEATURES.h5 --model NAME`")
    from genre_cli import train as train_stage

    cfg = train_stage.TrainConfig(model=model, model_config=_parse_sets(sets or []), epochs=epochs, batch_size=batch_size, lr=lr,
                                  optimizer=optimizer, weight_decay=weight_decay, patience=patience, seed=seed, device=device)
    con = _err()

    def on_epoch(rec):
        va = f" val_loss {rec['val_loss']:.3f} val_track_acc {rec['val_track_accuracy']:.3f}" if "val_loss" in rec else ""
        con.print(f"[dim]epoch {rec['epoch']:3d} loss {rec['loss']:.3f} train_acc {rec['train_accuracy']:.3f}{va} ({rec['seconds']:.1f}s)[/]")

    result = train_stage.run(features, config=cfg, out=out, workdir=workdir, force=force, dry_run=dry_run, on_epoch=on_epoch)
    _report_stage(result)
    if result.ran:
        s = result.summary
        va = "n/a" if s["val_track_accuracy"] is None else f"{s['val_track_accuracy']:.3f}"
        con.print(f"{s['model']} on {s['device']}: best epoch {s['best_epoch']}/{s['epochs_run']}, validation track accuracy {va}, {s['seconds']:.1f} s")
    typer.echo(str(result.path))


# ----------------------------------------------------------------------------- evaluate


@app.command()
@handle_errors
def evaluate(
    paths: Annotated[list[Path], typer.Argument(help="MODEL.h5 [MODEL.h5 ...] FEATURES.h5")],
    split: Annotated[str, typer.Option("--split", help="Split to score: test | validation | train | all.")] = "test",
    aggregate: Annotated[str, typer.Option("--aggregate", help="Track level from segments: mean (probabilities) | vote.")] = "mean",
    allow_leakage: Annotated[bool, typer.Option("--allow-leakage", help="Score tracks the model saw in training (flagged in the report).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON on stdout.")] = False,
    device: DeviceOpt = "cpu",
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
) -> None:
    """Segment- and track-level metrics of one or more models on a split of a features file."""
    from genre_cli import evaluate as eval_stage
    from genre_cli.errors import UsageError

    if len(paths) < 2:
        raise UsageError("give MODEL.h5 ... FEATURES.h5 (at least one model and the features)")
    result = eval_stage.run(paths[:-1], paths[-1], split=split, aggregate=aggregate, allow_leakage=allow_leakage, device=device,
                            out=out, workdir=workdir, force=force, dry_run=dry_run)
    if as_json:
        if result.status == "would run":
            _report_stage(result)
            return
        typer.echo(json.dumps(result.summary["reports"], indent=2))
        return
    _report_stage(result)
    if result.status != "would run":
        print_reports(result.summary["reports"])
        typer.echo(str(result.path))


def print_reports(reports: list[dict]) -> None:
    """A comparison table (stderr) naming dataset, split and level of every number."""
    from rich.table import Table

    con = _err()
    r0 = reports[0]
    title = f"{r0['dataset']} · split {r0['split']} · {r0['n_tracks']} tracks / {r0['n_segments']} segments · track = {r0['aggregate']} of segment probabilities"
    table = Table(title=title, title_justify="left")
    for col in ("model", "level", "accuracy", "balanced acc", "macro F1", "AUC"):
        table.add_column(col, justify="left" if col in ("model", "level") else "right")
    for r in reports:
        for level in ("track", "segment"):
            m = r[level]
            auc = "–" if m["auc"] is None else f"{m['auc']:.3f}"
            name = r["model_name"] + (" [red](LEAKAGE ALLOWED)[/]" if r["leakage"]["allowed"] else "")
            table.add_row(name, level, f"{m['accuracy']:.3f}", f"{m['balanced_accuracy']:.3f}", f"{m['macro_f1']:.3f}", auc)
    con.print(table)


# ----------------------------------------------------------------------------- predict


@app.command()
@handle_errors
def predict(
    model: Annotated[Path, typer.Argument(help="Model artifact from `genre train`.")],
    paths: Annotated[list[str], typer.Argument(help="Audio files or folders (recursive); `-` reads paths from stdin, one per line.")],
    fmt: Annotated[str, typer.Option("--format", help="tsv (path, genre, probability) | csv | jsonl")] = "tsv",
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Report the K most probable genres.")] = 1,
    timeline: Annotated[bool, typer.Option("--timeline", help="Also give per-window predictions with start times.")] = False,
    aggregate: Annotated[str, typer.Option("--aggregate", help="mean | vote over windows.")] = "mean",
    output: Annotated[Optional[Path], typer.Option("--output", help="Write results to FILE instead of stdout.", show_default=False)] = None,
    jobs: JobsOpt = 2,
    device: DeviceOpt = "auto",
) -> None:
    """Classify audio files; one line per file, flushed as soon as it is done.

    Exit code: 0 every audio file worked; 1 some failed (reasons on stderr); 2 none could be
    read or the model is unusable. Non-audio files found in folders are ignored and counted.
    """
    from genre_cli import predict as pred
    from genre_cli.errors import UsageError

    if fmt not in ("tsv", "csv", "jsonl"):
        raise UsageError(f"unknown --format {fmt!r}; use tsv, csv or jsonl")
    stats = pred.WalkStats()
    sources = []
    for p in paths:
        sources.extend(sys.stdin if p == "-" else [p])
    stream = open(output, "w", encoding="utf-8") if output else sys.stdout
    con = _err()
    done = failed = 0
    try:
        writer = _Writer(stream, fmt, top_k, timeline)
        for res in pred.run(model, pred.iter_inputs(sources, stats), jobs=jobs, device=device, aggregate=aggregate, timeline=timeline):
            if isinstance(res, pred.Failure):
                failed += 1
                con.print(f"[red]failed[/] {res.reason}", markup=True, highlight=False)
                continue
            done += 1
            writer.write(res)
    finally:
        if output:
            stream.close()
    con.print(f"{done} files classified, {failed} failed, {stats.ignored} non-audio files ignored")
    if done == 0 and failed > 0:
        raise typer.Exit(2)
    if failed:
        raise typer.Exit(1)


class _Writer:
    def __init__(self, stream, fmt: str, top_k: int, timeline: bool):
        import csv

        self.stream, self.fmt, self.k, self.timeline = stream, fmt, top_k, timeline
        self.csv = csv.writer(stream, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
        if fmt == "csv":
            self.csv.writerow(["path", "genre", "probability"] + (["window_start"] if timeline else []))

    def write(self, res) -> None:
        top = res.top(self.k)
        if self.fmt == "jsonl":
            rec = {"path": str(res.path), "genre": top[0][0], "probability": round(top[0][1], 6), "duration": round(res.duration, 3),
                   "top": [{"genre": g, "probability": round(p, 6)} for g, p in top]}
            if self.timeline:
                rec["windows"] = [{"start": round(s, 3), "genre": res.labels[int(p.argmax())], "probability": round(float(p.max()), 6)} for s, p in res.windows]
            self.stream.write(json.dumps(rec) + "\n")
        else:
            row = [str(res.path)]
            for g, p in top:
                row += [g, f"{p:.4f}"]
            self.csv.writerow(row + ([""] if self.timeline and self.fmt == "csv" else []))
            for s, p in res.windows:
                self.csv.writerow([str(res.path), res.labels[int(p.argmax())], f"{float(p.max()):.4f}", f"{s:.2f}"])
        self.stream.flush()


# ----------------------------------------------------------------------------- run / info


@app.command("run")
@handle_errors
def run_pipeline(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset name (default: the embedded demo).")] = "demo",
    source: Annotated[Optional[str], typer.Option("--from", help="Dataset source (URL, archive, folder).", show_default=False)] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="Labels CSV for the folder dataset.", show_default=False)] = None,
    label_column: Annotated[str, typer.Option("--label-column")] = "label",
    group_by: Annotated[Optional[str], typer.Option("--group-by", show_default=False)] = None,
    seconds: Annotated[float, typer.Option("--seconds", help="Window length (s).")] = 3.0,
    hop: Annotated[Optional[float], typer.Option("--hop", help="Window hop (s).")] = 1.5,
    mel: Annotated[int, typer.Option("--mel", min=0, help="Mel bands.")] = 128,
    handcrafted: Annotated[bool, typer.Option("--handcrafted", help="Also compute the 93 hand-crafted features.")] = False,
    model: Annotated[str, typer.Option("--model", "-m")] = "cnn6",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 30,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    split: Annotated[str, typer.Option("--split", help="Split to evaluate on.")] = "test",
    device: DeviceOpt = "auto",
    jobs: JobsOpt = 2,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
) -> None:
    """Run fetch → segment → featurize → train → evaluate, skipping stages that are up to date."""
    from genre_cli import pipeline
    from genre_cli.datasets import FetchOptions
    from genre_cli.features import FeatureConfig
    from genre_cli.segment import SegmentConfig
    from genre_cli.train import TrainConfig

    cfg = pipeline.PipelineConfig(
        dataset=dataset, source=source,
        fetch=FetchOptions(labels_csv=labels, label_column=label_column, group_by=group_by, jobs=jobs, seed=seed, progress=sys.stderr.isatty()),
        segment=SegmentConfig(seconds=seconds, hop=hop),
        features=FeatureConfig.from_params({"mel": mel, "handcrafted": handcrafted}),
        train=TrainConfig(model=model, epochs=epochs, seed=seed, device=device),
        split=split, jobs=jobs, workdir=workdir,
    )
    results = pipeline.run(cfg, force=force, dry_run=dry_run, on_stage=_report_stage)
    last = results[-1]
    if last.status != "would run":
        print_reports(last.summary["reports"])
        r = last.summary["reports"][0]
        typer.echo(f"track-level accuracy: {r['track']['accuracy']:.3f} (balanced {r['track']['balanced_accuracy']:.3f}) — "
                   f"{r['model_name']} on {r['dataset']}, {r['split']} split, {r['n_tracks']} tracks")


@app.command()
@handle_errors
def info(artifact: Annotated[Path, typer.Argument(help="Any genre HDF5 artifact.")], as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What an artifact is: stage, parameters, upstream chain, datasets and shapes, labels, completeness."""
    from genre_cli.inspect import describe

    d = describe(artifact)
    if as_json:
        typer.echo(json.dumps(d, indent=2, default=str))
        return
    from rich.console import Console

    con = Console(soft_wrap=True, highlight=False)
    state = "[green]complete[/]" if d["complete"] else "[red]INCOMPLETE[/]"
    con.print(f"[bold]{d['path']}[/]: stage [bold]{d['stage']}[/] (schema {d['schema_version']}), {state}, created {d['created']}")
    con.print(f"fingerprint {d['fingerprint'][:16]}…  dataset {d.get('dataset', '?')}")
    con.print(f"params {json.dumps(d['params'], sort_keys=True)}")
    if d.get("labels"):
        con.print(f"labels ({len(d['labels'])}): {', '.join(d['labels'])}")
    con.print("upstream:" if d["chain"] else "upstream: none")
    for item in d["chain"]:
        con.print(f"  {item['role']}: {item['stage'] or '?'} {item['path']} ({item['status']})")
    con.print("datasets:")
    for name, shape, dtype in d["datasets"]:
        con.print(f"  {name} {tuple(shape)} {dtype}")
    con.print(f"versions {json.dumps(d['versions'], sort_keys=True)}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
