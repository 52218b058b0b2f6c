"""The ``genre`` command line: parses options, calls the stage functions, prints results.

Only this module prints and exits. Exit codes: 0 success; 1 a failed run; 2 bad usage or
bad input (unknown name, missing or unusable file); 130 interrupted (Ctrl-C).
Heavy libraries (torch, librosa, sklearn) are imported inside the commands, never at
import time, so ``genre --help`` is fast.

Results go to stdout (artifact paths, predictions, JSON); notices, progress and errors go
to stderr, so the output pipes well.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from genre_cli.datasets import SCORE_SPLIT_OPTION, FetchOptions, check_score_split
from genre_cli.datasets.table import TableOptions
from genre_cli.features import FeatureConfig
from genre_cli.options import command_options
from genre_cli.serve.config import ServeConfig
from genre_cli.training import recipe as _recipe
from genre_cli.training.config import TrainConfig
from genre_cli.windows import SegmentConfig


def _plain_flags(params):
    """A flag takes no value: no type column (``<bool>``) in ``--help``."""
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
    return params


class _Command(typer.core.TyperCommand):
    """``--help`` as users read it: flags without a type, arguments by their metavar in the
    usage line (``genre predict [OPTIONS] MODEL PATHS...``)."""

    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if p.param_type_name == "argument":
                name = (p.metavar or p.name).upper()
                name += "..." if p.nargs != 1 and not name.endswith(("...", "FEATURES")) else ""
                pieces.append(name if p.required else f"[{name}]")
        return pieces


class _Group(typer.core.TyperGroup):
    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))


app = typer.Typer(
    name="genre",
    cls=_Group,
    help="Music genre classification: fetch → segment → featurize → train → evaluate → predict.\n\n"
    "Every stage writes a self-describing HDF5 artifact and is skipped when its inputs and parameters are unchanged.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_STATE = {"debug": False}

WorkdirOpt = Annotated[
    Optional[Path],
    typer.Option("--workdir", help="Work directory for derived outputs \\[env: GENRE_WORKDIR; default ./genre-work].", show_default=False),
]
OutOpt = Annotated[
    Optional[Path],
    typer.Option(
        "-o", "--out", help="Output artifact (default: a name derived from the parameters in the work directory).", show_default=False
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Rerun even if the output is up to date.")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="Say what would run; write nothing.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel workers.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N (cuda without a GPU is an error).")]


def _err():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _out(**kwargs):
    """A rich console on stdout whose closed pipe (`genre info X | head -1`) is the BrokenPipeError
    :func:`handle_errors` ends quietly with exit 0 (rich's own default exits 1)."""
    from rich.console import Console

    class _Out(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(32, "Broken pipe")

    return _Out(**kwargs)


def _esc(value) -> str:
    """``value`` as text that rich prints literally: a path like ``Live [live]/a.wav`` keeps its
    brackets, and one holding ``[/]`` cannot raise a MarkupError mid-batch."""
    from rich.markup import escape

    return escape(str(value))


def handle_errors(fn):
    """Turn GenreError into a red one-line message and its exit code; with --debug the
    traceback comes first and the exit code stays the same."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from genre_cli import interrupts
        from genre_cli.errors import GenreError

        try:
            with interrupts.catching():
                result = fn(*args, **kwargs)
                sys.stdout.flush()  # a closed pipe (`| head -1`) shows here, where it is handled, not at exit
                return result
        except GenreError as exc:
            if _STATE["debug"]:
                import traceback

                traceback.print_exception(exc, file=sys.stderr)
            con = _err()
            con.print(f"[bold red]error:[/] {_esc(exc.message)}", markup=True, highlight=False)
            if exc.hint:
                con.print(f"[dim]hint: {_esc(exc.hint)}[/]")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            if _STATE["debug"]:
                import traceback

                traceback.print_exception(exc, file=sys.stderr)
            _interrupted(_COMMANDS.get(fn.__name__, fn.__name__), exc)
            raise typer.Exit(130) from None
        except BrokenPipeError:  # `genre info X | head -1`: the reader has what it wanted; stop quietly
            import os

            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            raise typer.Exit(0) from None
        except (typer.Exit, typer.Abort):
            raise  # typer's own control flow (both subclass RuntimeError)
        except Exception as exc:  # a bug: one line and a way to report it, never a bare traceback
            if _STATE["debug"]:
                raise
            _unexpected(exc, _COMMANDS.get(fn.__name__, fn.__name__))
            raise typer.Exit(1) from None

    return wrapper


#: Command names whose function is named otherwise.
_COMMANDS = {"run_pipeline": "run"}

#: What an interrupted command leaves behind. Stages write through a temporary file that is
#: removed on Ctrl-C; ``train`` and ``predict`` say more through the interrupt's notes.
_KEPT = {
    "fetch": "no index was written; a download under way is kept (FILE.part in the data root) and the next `genre fetch` resumes it",
    "segment": "nothing half-written was kept; rerun the command to start over",
    "featurize": "nothing half-written was kept; rerun the command to start over",
    "train": "no model was written",
    "evaluate": "no report was written; rerun the command to start over",
    "cv": "no report was written; the folds' models already trained are kept (REPORT-folds/) and are skipped when you rerun",
    "run": "the stages that had finished are kept and are skipped when you rerun `genre run`; "
    "the interrupted stage kept nothing half-written and starts over",
    "serve": "the server stopped; uploads are not kept (their temporary folder is removed)",
}


def _interrupted(command: str, exc: BaseException) -> None:
    """Ctrl-C: say what was kept and how to go on (exit code 130 follows)."""
    notes = [] if command == "run" else list(getattr(exc, "__notes__", ()))
    kept = "; ".join(([_KEPT[command]] if command in _KEPT else []) + notes) or "nothing was written"
    _err().print(f"[yellow]interrupted: {_esc(kept)}[/]")


def _unexpected(exc: BaseException, command: str) -> None:
    """Report an error no stage raised on purpose: what, in which command, how to report it."""
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    con = _err()
    con.print(
        f"[bold red]error:[/] unexpected {type(exc).__name__} in `genre {command}`" + (f": {_esc(text)}" if text else ""),
        markup=True,
        highlight=False,
    )
    con.print(
        f"[dim]hint: this is a bug in genre; please report it with the output of `genre --debug {command} ...` "
        "(the same command with --debug shows the traceback)[/]"
    )


def _version(value: bool) -> None:
    if value:
        from genre_cli import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def main_callback(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error (the exit code stays the same).")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    _STATE["debug"] = debug
    for stream in (sys.stdin, sys.stdout, sys.stderr):  # a file name that is not UTF-8 is read/written as its own bytes
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="surrogateescape")


def _report_stage(result) -> None:
    """One line per stage on stderr; the artifact path on stdout."""
    con = _err()
    if result.status == "skipped":
        con.print(f"[dim]• {result.stage}: up to date, skipped ({_esc(result.path)}); --force reruns[/]")
    elif result.status == "would run":
        con.print(f"[cyan]• {result.stage}: would run → {_esc(result.path)}[/]")
    else:
        con.print(f"[green]✓ {result.stage}[/] → {_esc(result.path)}")
    for w in result.warnings:
        con.print(f"[yellow]warning:[/] {_esc(w)}")


# ----------------------------------------------------------------------------- fetch


def _notice(text: str) -> None:
    _err().print(f"[yellow]notice:[/] {_esc(text)}")


@app.command(cls=_Command)
@handle_errors
@command_options({"options": FetchOptions.cli_options()}, notice=_notice, after="root")
def fetch(
    dataset: Annotated[str, typer.Argument(metavar="DATASET", help="Dataset name: demo, folder, gtzan (see --list); or `model`.")] = "demo",
    model_name: Annotated[
        Optional[str], typer.Argument(metavar="MODEL", help="With `model`: the model to rebuild (musicnn).", show_default=False)
    ] = None,
    source: Annotated[
        Optional[str], typer.Option("--from", help="URL, archive or folder to take the dataset from.", show_default=False)
    ] = None,
    root: Annotated[
        Optional[Path],
        typer.Option("--root", help="Data root for downloads \\[env: GENRE_DATA; default ~/.cache/genre/data].", show_default=False),
    ] = None,
    legacy_split: Annotated[Optional[str], typer.Option("--split", hidden=True)] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the registered datasets and exit.")] = False,
    jobs: JobsOpt = 2,
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
    into_package: Annotated[
        bool, typer.Option("--into-package", help="With `model`: write into the installed package (replacing the shipped files).")
    ] = False,
    options: dict | None = None,
) -> None:
    """Index a dataset (labels, groups, splits by track) into an HDF5 track index.

    Datasets: demo (embedded: 161 drum performances, 4 styles, a performer-disjoint split), folder (a folder per label, or
    any folder with a --labels table), gtzan (downloaded from its mirrors, or --from an archive
    or folder; the artist-filtered split by default). Splits are always by track.

    `genre fetch model musicnn [--from WHEEL|URL]` rebuilds the shipped musicnn weights (Pons &
    Serra 2019) from the `musicnn` 0.1.0 wheel (ISC licence; sha256 checked; downloaded with pip
    when no --from is given) into the data root's `models/` folder (or `-o DIR`); the built-in
    models work without it.

    Examples:
      genre fetch demo
      genre fetch folder --from ~/music --labels tracks.csv --label-column style --group-by drummer -o idx.h5
    """
    from genre_cli import fetch as fetch_stage
    from genre_cli.datasets import DATASETS, list_datasets

    if dataset == "model":
        _fetch_model(model_name, source=source, root=root, out=out, into_package=into_package)
        return
    if model_name is not None:
        from genre_cli.errors import UsageError

        raise UsageError(f"unexpected argument {model_name!r}: only `genre fetch model NAME` takes a second name")

    if list_:
        for name in list_datasets():
            typer.echo(f"{name}\t{DATASETS.meta(name).get('description', '')}")
        return
    values = dict(options or {})
    if legacy_split is not None:  # `--split` meant the split mode before `genre run` needed it for the scored split
        _notice("in `genre fetch`, --split is now --split-mode (--split names the split a model is scored on)")
        values["split"] = legacy_split
    fetch_options = FetchOptions.from_cli(values, jobs=jobs, progress=sys.stderr.isatty())
    result = fetch_stage.run(
        dataset, source=source, root=root, options=fetch_options, out=out, workdir=workdir, force=force, dry_run=dry_run
    )
    _report_stage(result)
    note = fetch_stage.unused_seed_note(dataset, source, fetch_options)
    if note:
        _notice(note)
    if result.ran:
        _print_fetch_summary(result.summary)
    typer.echo(str(result.path))


def _fetch_model(name: str | None, *, source: str | None, root: Path | None, out: Path | None, into_package: bool) -> None:
    from genre_cli.errors import UsageError
    from genre_cli.pretrained.convert import FETCHABLE, fetch_model, user_models_dir
    from genre_cli.pretrained.variants import VARIANTS
    from genre_cli.pretrained.weights import PACKAGE_DIR

    if name is None:
        raise UsageError(f"say which model: genre fetch model {' | '.join(FETCHABLE)}")
    if out is not None and into_package:
        raise UsageError("-o/--out and --into-package are exclusive")
    dest = out if out is not None else PACKAGE_DIR if into_package else user_models_dir(root)
    paths = fetch_model(name, source=source, out_dir=dest, progress=sys.stderr.isatty())
    for key, p in paths.items():
        _err().print(f"{VARIANTS[key].name}: {p.stat().st_size / 1e6:.2f} MB")
        typer.echo(str(p))


def _print_fetch_summary(summary: dict) -> None:
    from rich.table import Table

    counts = summary["counts"]
    splits = sorted(
        {s for c in counts.values() for s in c},
        key=lambda s: ("train", "validation", "test", "-").index(s) if s in ("train", "validation", "test", "-") else 9,
    )
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
    _print_folds(summary)
    bad = ", ".join(f"{n} {k}" for k, n in summary.get("n_bad", {}).items())
    con.print(f"skipped: {summary.get('skipped_files', 0)} non-audio files" + (f"; not ok: {bad}" if bad else ""))


def _print_folds(summary: dict) -> None:
    """The ``folds:`` line of fetch and featurize --table (nothing without folds)."""
    if summary.get("folds"):
        by = f", no {summary['fold_groups']} in two folds" if summary.get("fold_groups") else ""
        sizes = ", ".join(str(n) for _, n in sorted(summary["folds"].items()))
        _err().print(f"folds: {len(summary['folds'])} (stratified by label{by}): {sizes} tracks")


# ----------------------------------------------------------------------------- segment


@app.command(cls=_Command)
@handle_errors
@command_options({"segment": SegmentConfig.cli_options()})
def segment(
    index: Annotated[Path, typer.Argument(metavar="INDEX", help="Track index from `genre fetch`.")],
    compress: Annotated[
        bool,
        typer.Option("--compress/--no-compress", help="Compress the stored audio (Blosc LZ4 + bit-shuffle: 13-21 % smaller, nearly free)."),
    ] = True,
    audio_dtype: Annotated[
        str,
        typer.Option(
            "--audio-dtype",
            help="Stored audio: float32 (exact decoded values) | float16 (half the disk; 11 significant bits, changes statistics of "
            "near-empty bands) | int16 (exact to 1/32767; rounds near-silence).",
        ),
    ] = "float32",
    jobs: JobsOpt = 2,
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
    segment: dict | None = None,
) -> None:
    """Decode tracks once (mono, resampled) and cut them into windows.

    Window policies: --seconds 3 --hop 1.5 (overlapping); --random 5 --seconds 3 (F. Zhang 2022);
    --first 10 --seconds 5 (Schrader et al. 2021); --frames 128 --frame-hop 512 (Yang & Zhang 2019).
    A track shorter than one window is skipped (--last pad keeps it as one zero-padded window);
    when no track gives a window, nothing is written (exit 2).

    Examples:
      genre segment idx.h5 --seconds 3 -o seg.h5
      genre segment idx.h5 --seconds 3 --hop 1.5 --last pad -o seg.h5
    """
    from genre_cli import segment as seg_stage

    cfg = SegmentConfig.from_cli(segment or {})
    result = seg_stage.run(
        index,
        config=cfg,
        out=out,
        workdir=workdir,
        jobs=jobs,
        compress=compress,
        audio_dtype=audio_dtype,
        force=force,
        dry_run=dry_run,
        show_progress=True,
    )
    _report_stage(result)
    if cfg.policy == "random" and cfg.hop is not None:
        _notice(
            f"--random {cfg.count} picks the training windows at random; --hop {cfg.hop:g} is the hop of the windows "
            "`genre predict` classifies a whole file with"
        )
    if result.ran:
        s = result.summary
        _err().print(
            f"{s['n_segments']} segments of {cfg.win} samples ({cfg.win / cfg.sr:.2f} s) from {s['n_tracks']} tracks "
            f"({s['audio_hours']:.2f} h of audio); {s['n_skipped']} tracks skipped"
        )
        _print_skipped(result)
    typer.echo(str(result.path))


def _print_skipped(result) -> None:
    """The tracks a segment run skipped and why (the first 10), as `genre segment` and `genre run` say them."""
    skipped = result.summary.get("skipped") or []
    con = _err()
    for line in skipped[:10]:
        con.print(f"  [yellow]skipped[/] {_esc(line)}", markup=True, highlight=False)
    if len(skipped) > 10:
        con.print(f"  … and {len(skipped) - 10} more (`genre info {_esc(result.path)}` lists them in /skipped)")


# ----------------------------------------------------------------------------- featurize


@app.command(cls=_Command)
@handle_errors
@command_options({"features": FeatureConfig.cli_options(), "table_options": TableOptions.cli_options()}, notice=_notice)
def featurize(
    segments: Annotated[
        Optional[Path],
        typer.Argument(metavar="SEGMENTS", help="Segments artifact from `genre segment` (omit with --table).", show_default=False),
    ] = None,
    float16: Annotated[bool, typer.Option("--float16", help="Store features as float16.")] = False,
    table: Annotated[
        Optional[Path],
        typer.Option("--table", help="Import a precomputed feature table (CSV, one row per track) instead.", show_default=False),
    ] = None,
    jobs: JobsOpt = 2,
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
    features: dict | None = None,
    table_options: dict | None = None,
) -> None:
    """Compute features for every segment (all representations share one STFT), or import a table.

    Normalisation statistics come from the train split only; --jobs N gives bit-identical
    output for any N. A published feature table (one row per track) imports with --table;
    GTZAN ids get the artist-filtered split; --folds K adds folds for `genre cv`.

    Examples:
      genre featurize seg.h5 --mel 128 --handcrafted --jobs 2 -o feat.h5
      genre featurize --table features_30_sec.csv -o gtzan-table.h5
    """
    from genre_cli.errors import UsageError

    topts = TableOptions.from_cli(table_options or {})
    if table is not None:
        from genre_cli import table as table_stage

        if segments is not None:
            raise UsageError("give either a SEGMENTS artifact or --table, not both")
        unused = _set_flags(FeatureConfig.from_cli(features or {}), FeatureConfig(), FeatureConfig.cli_options())
        unused += ["--float16"] if float16 else []
        if unused:
            raise UsageError(
                f"{' '.join(unused)}: feature options compute features from SEGMENTS; a --table is imported as it is",
                hint="drop them, or featurize a segments file",
            )
        seeded = ("test_fraction", "val_fraction") + (() if topts.folds else ("seed",))  # --folds draws with --seed too
        random_only = [o for o in TableOptions.cli_options() if o.name in seeded]
        unused = _set_flags(topts, TableOptions(), random_only)
        if unused and topts.split != "random":
            raise UsageError(
                f"{' '.join(unused)} only applies with --split-mode random; with --split-mode {topts.split} the split "
                "comes from --split-file, the artist-filtered GTZAN lists or the table's split column",
                hint="add --split-mode random, or drop " + " ".join(f.split()[0] for f in unused),
            )
        result = table_stage.run(table, options=topts, out=out, workdir=workdir, force=force, dry_run=dry_run)
        _report_stage(result)
        if result.ran:
            s = result.summary
            counts = ", ".join(f"{n} {split}" for split, n in s["counts"].items())
            _err().print(f"{s['n_rows']} tracks x {s['n_features']} features; split: {s['split_method']}; {counts}")
            _print_folds(s)
        typer.echo(str(result.path))
        return
    if segments is None:
        raise UsageError("missing SEGMENTS artifact", hint="`genre featurize SEGMENTS.h5 --mel 128`, or `--table CSV`")
    unused = _set_flags(topts, TableOptions(), TableOptions.cli_options())
    if unused:
        raise UsageError(f"{' '.join(unused)}: table options apply to --table CSV only", hint="drop them, or give --table CSV")
    from genre_cli import featurize as feat_stage

    cfg = FeatureConfig.from_cli(features or {}).validate()
    result = feat_stage.run(segments, config=cfg, out=out, workdir=workdir, jobs=jobs, float16=float16, force=force, dry_run=dry_run)
    _report_stage(result)
    if result.ran:
        from rich.markup import escape

        s = result.summary
        con = _err()
        dtype = "float16" if float16 else "float32"
        shapes = ", ".join(f"{k} {tuple(v)}" for k, v in s["shapes"].items())
        con.print(
            f"{s['n_segments']} segments ({dtype}): {shapes}; normalisation stats over the {s['norm_split']} split "
            f"({s['n_norm_segments']} segments)"
        )
        if s["n_skipped_tracks"]:
            con.print(f"{s['n_skipped_tracks']} tracks were skipped by `genre segment` (no segments):")
            for line in s["skipped"][:10]:
                con.print(f"  [yellow]skipped[/] {escape(line)}", markup=True, highlight=False)
    typer.echo(str(result.path))


def _set_flags(cfg, default, options) -> list[str]:
    """``--flag VALUE`` for each of ``options`` whose value in ``cfg`` is not its default."""
    return [o.hint(getattr(cfg, o.name)) for o in options if getattr(cfg, o.name) != getattr(default, o.name)]


# ----------------------------------------------------------------------------- train


#: ``genre train --help``: how each training setting is resolved, with the values of
#: :data:`~genre_cli.training.recipe.RECIPE` and :data:`~genre_cli.training.recipe.PLAIN`
#: written out from the dicts themselves (so the help cannot drift from what training does).
TRAIN_HELP = "\n\n".join(
    (
        "Train a registered model on the train split with the default recipe (or --paper settings).",
        "A training option left unset takes the model's adjustment to the recipe where it has one (--list-models, "
        'column "recipe changes": e.g. more epochs for networks that converge slowly), else the default recipe, the same '
        f"for every torch model: {_recipe.describe(_recipe.RECIPE)}. With --paper it takes the model's paper value where its paper "
        'states one (--list-models, column "paper training"), else plain training: '
        f"{_recipe.describe(_recipe.PLAIN)} (weight decay 0 for models with their own per-layer L2). A flag always wins: "
        "flag > model's recipe change > recipe; with --paper, flag > paper > plain. The summary after training and "
        "`genre info MODEL` list every setting with its source. sklearn models use none of these settings (one given is "
        "ignored with a warning).",
        "Each model input is filled from the features file, with the feature the model's paper used when the file has it. "
        "Multi-GPU: run the same command under torchrun --nproc-per-node N -m genre_cli train ...",
        "Examples:\n  genre train feat.h5 --model cnn6 -o cnn6.h5\n  genre train feat.h5 --model svm --input vector=handcrafted -o svm.h5",
    )
)


@app.command(cls=_Command, help=TRAIN_HELP)
@handle_errors
@command_options({"train": TrainConfig.cli_options()}, after="list_models")
def train(
    features: Annotated[
        Optional[Path], typer.Argument(metavar="FEATURES", help="Features artifact from `genre featurize`.", show_default=False)
    ] = None,
    list_models: Annotated[
        bool, typer.Option("--list-models", help="List models with their inputs, features, sources and paper settings, and exit.")
    ] = False,
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
    train: dict | None = None,
) -> None:
    """`genre train`; its help is :data:`TRAIN_HELP` (built from the recipe's values)."""
    from genre_cli.errors import UsageError

    if list_models:
        from rich.table import Table

        from genre_cli.models import list_models as names
        from genre_cli.models import model_info

        header = ("model", "kind", "inputs", "paper features", "source", "paper training (--paper)", "recipe changes", "description")
        rows = []
        for name in names():
            info = model_info(name)
            rows.append(
                (
                    name,
                    info.get("kind", ""),
                    ", ".join(info.get("inputs", ())),
                    ", ".join(f"{k}={v}" for k, v in info.get("features", {}).items()),
                    info.get("source", ""),
                    ", ".join(f"{k}={v}" for k, v in info.get("train", {}).items()) or "-",
                    ", ".join(f"{k}={v}" for k, v in info.get("recipe", {}).items()) or "-",
                    info.get("description", ""),
                )
            )
        if not sys.stdout.isatty():  # piped: one tab-separated line per model
            for row in (header, *rows):
                typer.echo("\t".join(row))
            return
        table = Table(*header)
        for row in rows:
            table.add_row(*row)
        _out().print(table)
        return
    if features is None:
        raise UsageError("missing FEATURES artifact", hint="`genre train FEATURES.h5 --model NAME`")
    from genre_cli import train as train_stage

    cfg = TrainConfig.from_cli(train or {})
    con = _err()

    def on_epoch(rec):
        va = (
            f" val_loss {rec['val_loss']:.3f} val_track_acc {rec['val_track_accuracy']:.3f} bal {rec['val_track_balanced_accuracy']:.3f}"
            if "val_track_balanced_accuracy" in rec
            else f" val_loss {rec['val_loss']:.3f} val_track_acc {rec['val_track_accuracy']:.3f}"
            if "val_loss" in rec
            else ""
        )
        loss = f" loss {rec['loss']:.3f}" if "loss" in rec else ""
        speed = f" ({rec['seconds']:.1f}s, {rec['samples_per_s']:.0f} samples/s)" if "seconds" in rec else ""
        con.print(f"[dim]epoch {rec['epoch']:3d}{loss} train_acc {rec['train_accuracy']:.3f}{va}{speed}[/]")

    result = train_stage.run(
        features,
        config=cfg,
        out=out,
        workdir=workdir,
        force=force,
        dry_run=dry_run,
        on_epoch=on_epoch,
        on_notice=lambda text: con.print(f"[yellow]warning:[/] {_esc(text)}"),
    )
    if result.summary.get("rank", 0):
        return  # torchrun: only rank 0 reports
    _report_stage(result)
    if result.ran:
        s = result.summary
        va = "n/a" if s["val_track_accuracy"] is None else f"{s['val_track_accuracy']:.3f}"
        src = s.get("train_sources", {})
        hp = ", ".join(f"{k} {v}" + (f" ({src[k]})" if src.get(k) not in (None, "flag") else "") for k, v in s["train"].items())
        resumed = f", resumed after epoch {s['resumed_from']}" if s.get("resumed_from") else ""
        if s["train"].get("select") == "last":
            kept = f"kept the last weights (epoch {s['best_epoch']}/{s['epochs_run']}{', averaged' if s['train'].get('ema') else ''})"
        else:
            kept = f"best epoch {s['best_epoch']}/{s['epochs_run']}"
        con.print(f"{s['model']} on {s['device']} (amp {s['amp']}): {kept}, validation track accuracy {va}, {s['seconds']:.1f} s{resumed}")
        con.print(f"inputs: {_esc(_inputs_text(s['inputs'], s['input_shapes'], s.get('paper_inputs', {})))}")
        con.print(f"[dim]settings: {hp}[/]")
        for key, note in (s.get("train_notes") or {}).items():
            con.print(f"[dim]{key}: {note}[/]")
    typer.echo(str(result.path))


def _inputs_text(inputs: dict, shapes: dict, paper: dict | None = None) -> str:
    """``spectrogram = mel (130 x 128)``: which feature each model input slot got (and the paper's, where it differs)."""
    parts = []
    for slot, name in inputs.items():
        shape = " x ".join(map(str, shapes.get(slot, ())))
        note = f"; the paper used {paper[slot]}" if paper and slot in paper else ""
        parts.append(f"{slot} = {name} ({shape}{note})" if shape else f"{slot} = {name}{note}")
    return ", ".join(parts)


# ----------------------------------------------------------------------------- evaluate


@app.command(cls=_Command)
@handle_errors
@command_options({"scored": (SCORE_SPLIT_OPTION,)})
def evaluate(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="MODEL... FEATURES",
            help="One or more model artifacts from `genre train` (or the built-in genres), then a features artifact.",
        ),
    ],
    aggregate: Annotated[str, typer.Option("--aggregate", help="Track level from segments: mean (probabilities) | vote.")] = "mean",
    allow_leakage: Annotated[
        bool,
        typer.Option(
            "--allow-leakage", help="Score tracks (or, on a group-aware split, groups) the model saw in training; flagged in the report."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON on stdout.")] = False,
    plots: Annotated[
        Optional[Path],
        typer.Option(
            "--plots",
            help="Folder for PNG plots (confusion matrices, training curves) \\[default: REPORT-plots next to the report].",
            show_default=False,
        ),
    ] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Do not draw plots.")] = False,
    device: DeviceOpt = "cpu",
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
    scored: dict | None = None,
) -> None:
    """Segment- and track-level metrics of one or more models on a split of a features file.

    Tables (stderr): a comparison of all models, per-class precision/recall/F1/AUC and the
    track-level confusion matrix of each. The report is saved as HDF5 and JSON (its path on
    stdout; --json prints it instead). Never scores tracks a model was trained or validated
    on (--allow-leakage overrides and is flagged in red); a group (performer, artist) shared
    with training is refused on a split made group-disjoint and reported on an official split.
    Labels are matched by name: a test set may hold only some of the model's labels (scores
    cover the labels present, and the absent ones are named); a label the model does not
    know is refused.

    Examples:
      genre evaluate cnn6.h5 feat.h5
      genre evaluate svm.h5 cnn6.h5 feat.h5 --no-plots --json
    """
    from genre_cli import evaluate as eval_stage
    from genre_cli.errors import UsageError

    if len(paths) < 2:
        raise UsageError("give MODEL.h5 ... FEATURES.h5 (at least one model and the features)")
    split = check_score_split((scored or {}).get("split", "test"))
    result = eval_stage.run(
        paths[:-1],
        Path(paths[-1]),
        split=split,
        aggregate=aggregate,
        allow_leakage=allow_leakage,
        device=device,
        out=out,
        workdir=workdir,
        force=force,
        dry_run=dry_run,
    )
    if result.status == "would run":
        _report_stage(result)
        return
    reports = result.summary["reports"]
    written = [] if no_plots else eval_stage.write_plots(reports, plots or result.path.with_name(result.path.stem + "-plots"))
    if as_json:
        typer.echo(json.dumps(reports, indent=2))
    else:
        _report_stage(result)
        print_reports(reports, details=True)
    con = _err()
    if written:
        con.print(f"[dim]plots: {len(written)} PNG files in {_esc(written[0].parent)}[/]")
    if not as_json:
        typer.echo(str(result.path))


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def print_reports(reports: list[dict], *, details: bool = False) -> None:
    """Comparison table (stderr) naming dataset, split and level of every number.

    With ``details``: per model, a per-class table (track and segment level) and the
    track-level confusion matrix. Leakage notes are printed prominently.
    """
    from rich.table import Table

    con = _err()
    r0 = reports[0]
    how = r0.get("aggregate_note", f"track = {r0['aggregate']} of segment probabilities")
    title = (
        f"{r0['dataset']} · split {r0['split']} ({r0.get('split_method', 'unknown')}) · "
        f"{r0['n_tracks']} tracks / {r0['n_segments']} segments · {how}"
    )
    table = Table(title=title, title_justify="left")
    for col in ("model", "level", "n", "accuracy", "balanced acc", "macro F1", "macro AUC"):
        table.add_column(col, justify="left" if col in ("model", "level") else "right")
    for r in reports:
        for level in ("track", "segment"):
            m = r[level]
            name = r["model_name"] + (" [red](LEAKAGE ALLOWED)[/]" if r["leakage"]["allowed"] else "")
            table.add_row(
                name, level, str(m["n"]), f"{m['accuracy']:.3f}", f"{m['balanced_accuracy']:.3f}", f"{m['macro_f1']:.3f}", _fmt(m["auc"])
            )
    con.print(table)
    for r in reports:
        if r.get("labels_absent"):
            present = len(r["labels"]) - len(r["labels_absent"])
            con.print(
                f"[bold yellow]note:[/] {_esc(r['model_name'])}: the {r['split']} split has no track of "
                f"{_esc(', '.join(r['labels_absent']))} ({len(r['labels_absent'])} of the model's {len(r['labels'])} labels); "
                f"balanced accuracy, macro F1 and AUC cover the {present} labels present",
                markup=True,
                highlight=False,
            )
        if r.get("labels_untrained"):
            n = sum(r["labels_untrained"].values())
            which = ", ".join(f"{lab} ({k})" for lab, k in r["labels_untrained"].items())
            con.print(
                f"[bold yellow]warning:[/] {_esc(r['model_name'])}: {n} of the {r['n_tracks']} evaluated tracks have a label the model "
                f"saw no training track of: {_esc(which)}; it never learned them, so expect them wrong",
                markup=True,
                highlight=False,
            )
        leak = r["leakage"]
        if leak.get("allowed"):
            con.print(
                f"[bold red]LEAKAGE ALLOWED[/] ({r['model_name']}): {leak['tracks']} evaluated tracks were in its training/validation "
                f"split{'; ' + leak['note'] if leak.get('note') else ''} — these scores are inflated",
                markup=True,
                highlight=False,
            )
        elif leak.get("note"):
            con.print(f"[bold yellow]warning:[/] {r['model_name']}: {_esc(leak['note'])}", markup=True, highlight=False)
    if not details:
        return
    for r in reports:
        for level in ("track", "segment"):
            m = r[level]
            pc = Table(
                title=f"{r['model_name']} per class · {r['dataset']} {r['split']} split · {level} level (n={m['n']})", title_justify="left"
            )
            for col in ("class", "support", "precision", "recall", "F1", "AUC (OvR)"):
                pc.add_column(col, justify="left" if col == "class" else "right")
            for lab in r["labels"]:
                c = m["per_class"][lab]
                pc.add_row(lab, str(c["support"]), _fmt(c["precision"]), _fmt(c["recall"]), _fmt(c["f1"]), _fmt(c.get("auc")))
            pc.add_row(
                "[dim]macro[/]", str(m["n"]), _fmt(m["macro_precision"]), _fmt(m["macro_recall"]), _fmt(m["macro_f1"]), _fmt(m["auc"])
            )
            con.print(pc)
        cm = Table(
            title=f"{r['model_name']} track-level confusion ({r['n_tracks']} tracks; rows true, columns predicted)", title_justify="left"
        )
        cm.add_column("true \\ pred")
        for lab in r["labels"]:
            cm.add_column(lab, justify="right")
        for lab, row in zip(r["labels"], r["track"]["confusion"]):
            cm.add_row(lab, *[f"[bold]{v}[/]" if i == r["labels"].index(lab) else str(v) for i, v in enumerate(row)])
        con.print(cm)


# ----------------------------------------------------------------------------- cv

#: ``genre cv`` takes every training option of ``genre train`` (``--model`` repeatable: one run per model).
_CV_TRAIN = tuple(
    dataclasses.replace(
        o,
        cli_type=list[str],
        cli_default=None,
        metavar="NAME",
        help="Registered model name (see `genre train --list-models`); repeat for several [default: cnn6].",
    )
    if o.name == "model"
    else o
    for o in TrainConfig.cli_options()
    if o.name != "resume"
)


@app.command(cls=_Command)
@handle_errors
@command_options({"train": _CV_TRAIN})
def cv(
    features: Annotated[
        Path, typer.Argument(metavar="FEATURES", help="Features artifact of an index fetched with `genre fetch ... --folds K`.")
    ],
    fold: Annotated[
        Optional[list[int]],
        typer.Option("--fold", metavar="K", help="Only this test fold; repeatable \\[default: every fold].", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON on stdout.")] = False,
    out: OutOpt = None,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
    train: dict | None = None,
) -> None:
    """K-fold cross-validation: train on all folds but one, score the held-out fold, for every fold.

    The folds are the index's (`genre fetch ... --folds K`; with --group-by COL no performer or
    artist is in two folds). Each model is trained with the settings `genre train` takes (no
    validation split: the default recipe keeps the last, averaged weights) and scored at track
    level on the held-out fold. Prints, per model, the mean ± standard deviation over folds of
    track-level balanced accuracy, accuracy and macro-F1, naming the data and how the folds were
    made. The fold models are kept in REPORT-folds/ beside the report and skipped when up to date.

    Examples:
      genre cv feat.h5 --model svm --model mlp
      genre cv feat.h5 --model cnn6 --epochs 15 --fold 0 --fold 1 -o cv.h5
    """
    from genre_cli import cv as cv_stage
    from genre_cli.errors import UsageError

    values = dict(train or {})
    names = values.pop("model", None) or [TrainConfig().model]
    if len(set(names)) != len(names):
        raise UsageError(f"--model given twice with the same name ({', '.join(sorted({n for n in names if names.count(n) > 1}))})")
    configs = [TrainConfig.from_cli(values, model=name) for name in names]
    con = _err()

    def on_fold(rec):
        t = rec["track"]
        how = "up to date" if rec["status"] == "skipped" else f"trained in {rec['seconds']:.1f} s"
        con.print(
            f"[dim]{_esc(rec['model'])} fold {rec['fold']}: track balanced acc {t['balanced_accuracy']:.3f}, "
            f"accuracy {t['accuracy']:.3f}, macro-F1 {t['macro_f1']:.3f} ({rec['n_test_tracks']} test / "
            f"{rec['n_train_tracks']} training tracks; {how})[/]"
        )

    result = cv_stage.run(
        features,
        models=configs,
        folds=fold,
        out=out,
        workdir=workdir,
        force=force,
        dry_run=dry_run,
        show_progress=sys.stderr.isatty(),
        on_fold=on_fold,
        on_notice=_warning,
    )
    if result.status == "would run":
        _report_stage(result)
        return
    report = result.summary["report"]
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _report_stage(result)
    print_cv(report)
    typer.echo(str(result.path))


def _warning(text: str) -> None:
    _err().print(f"[yellow]warning:[/] {_esc(text)}")


def print_cv(report: dict) -> None:
    """The cross-validation table (stderr): per model, mean ± std over folds of the track-level
    scores, and a line naming the data, the folds (group-aware or not) and the level."""
    from rich.table import Table

    con = _err()
    ran = "" if len(report["folds"]) == report["n_folds"] else f", test folds {', '.join(map(str, report['folds']))}"
    one = len(report["folds"]) == 1
    title = (
        f"{report['dataset']} · {Path(report['features']).name} · {report['split_method']}{ran} · {report['n_tracks']} tracks · "
        "track level (mean of segment probabilities) · " + ("one fold: no spread" if one else "mean ± std over folds")
    )
    table = Table(title=_esc(title), title_justify="left")
    for col in ("model", "folds", "balanced acc", "accuracy", "macro F1"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for m in report["models"]:
        s = m["summary"]["track"]
        cells = [
            f"{s[k]['mean']:.3f}" + ("" if s[k]["std"] is None else f" ± {s[k]['std']:.3f}")
            for k in ("balanced_accuracy", "accuracy", "macro_f1")
        ]
        table.add_row(_esc(m["label"]), str(m["summary"]["n_folds"]), *cells)
    con.print(table)
    for m in report["models"]:
        per = ", ".join(f"{r['fold']}: {r['track']['balanced_accuracy']:.3f}" for r in m["folds"])
        con.print(f"[dim]{_esc(m['label'])} track balanced accuracy per fold: {per}[/]")


# ----------------------------------------------------------------------------- predict


@app.command(cls=_Command)
@handle_errors
def predict(
    model: Annotated[
        str,
        typer.Argument(metavar="MODEL", help="Model artifact from `genre train`, or a built-in model: genres, musicnn-msd, musicnn-mtt."),
    ],
    paths: Annotated[
        list[str], typer.Argument(metavar="PATHS", help="Audio files or folders (recursive); `-` reads paths from stdin, one per line.")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="tsv (path, genre, probability; no header, no quoting: a tab, newline, carriage return or backslash "
            "in a field is written \\t, \\n, \\r, \\\\) | csv (RFC 4180, with header) | jsonl",
        ),
    ] = "tsv",
    top_k: Annotated[
        int, typer.Option("--top-k", min=1, help="Report the K most probable genres (tags for a tagger); at most the model's labels.")
    ] = 1,
    timeline: Annotated[bool, typer.Option("--timeline", help="Also give per-window predictions with start/end times (s).")] = False,
    aggregate: Annotated[
        str,
        typer.Option("--aggregate", help="Whole file from windows: mean (probabilities) | vote (share of windows; classifiers only)."),
    ] = "mean",
    output: Annotated[
        Optional[Path], typer.Option("--output", help="Write results to FILE instead of stdout (`-`: stdout).", show_default=False)
    ] = None,
    jobs: JobsOpt = 2,
    device: DeviceOpt = "auto",
) -> None:
    """Classify audio files; one line per file, written and flushed as soon as it is done.

    Reads wav, flac, ogg, mp3 (and m4a, aac, opus, wma when ffmpeg is installed), any
    sample rate and channel count: audio is downmixed and resampled as the model was
    trained. Long files are decoded block by block (memory stays bounded). The whole-file
    genre aggregates all windows of the model's length and hop, as `genre evaluate` does
    at track level.

    Built-in models work offline, with no training: `genre predict genres ~/Music` (one of 10
    GTZAN genres per file), `genre predict musicnn-msd ~/Music --top-k 5` (tags; see `genre models`).
    A tagger's scores are independent likelihoods in [0, 1], not probabilities that sum to 1:
    its csv header says `tag` and `likelihood` where a classifier's says `genre` and
    `probability`; its jsonl record keeps the keys every model has (`genre`, `probability`,
    `top`, `probabilities`) and adds `"output": "sigmoid"`. `--aggregate vote` needs a
    classifier (one label per window).

    Exit code: 0 every audio file worked; 1 some failed (one line per failure on
    stderr: path and reason); 2 none could be read, no audio file was given, or the
    model is unusable. Non-audio files found in folders are ignored and counted in the
    summary (stderr), and so are hidden files and folders (`.DS_Store`, macOS `._x.wav`):
    folders are walked as `genre fetch folder` walks them, symlinked folders followed once.

    Examples:
      genre predict cnn6.h5 ~/Music --jobs 4 > genres.tsv
      find ~/Music -name '*.mp3' | genre predict cnn6.h5 - --format jsonl
    """
    import itertools

    from genre_cli import predict as pred
    from genre_cli.errors import UsageError

    if fmt not in ("tsv", "csv", "jsonl"):
        raise UsageError(f"unknown --format {fmt!r}; use tsv, csv or jsonl")
    if aggregate not in ("mean", "vote"):
        raise UsageError(f"unknown --aggregate {aggregate!r}; use mean or vote")
    if paths.count("-") > 1:
        raise UsageError("`-` (read paths from stdin) may be given once")
    from genre_cli.inference import load_classifier

    desc = load_classifier(model, weights=False)
    words = ("tag", "likelihood") if desc.output == "sigmoid" else ("genre", "probability")
    if top_k > len(desc.labels):
        _notice(f"--top-k {top_k} is more than the model's {len(desc.labels)} labels: all {len(desc.labels)} are listed")
        top_k = len(desc.labels)
    if output is not None and str(output) == "-":
        output = None
    if output is not None:
        _check_writable(output)
    stats = pred.WalkStats()
    sources = itertools.chain.from_iterable(sys.stdin if p == "-" else (p,) for p in paths)
    con = _err()
    done = failed = 0
    results = pred.run(model, pred.iter_inputs(sources, stats), jobs=jobs, device=device, aggregate=aggregate, timeline=timeline)
    stream = None
    try:
        first = next(results, None)  # loads and checks the model before any output is created
        stream = open(output, "w", encoding="utf-8", errors="surrogateescape", newline="") if output else sys.stdout
        writer = _Writer(stream, fmt, top_k, timeline, words)
        for res in itertools.chain([first] if first is not None else [], results):
            if isinstance(res, pred.Failure):
                failed += 1
                con.print(f"[red]failed[/] {_esc(res.reason)}", markup=True, highlight=False)
                continue
            try:
                writer.write(res)
            except BrokenPipeError:
                raise
            except OSError as exc:  # a full disk, a quota, an I/O error: the output, not a bug
                from genre_cli.errors import GenreError

                results.close()
                dest = output or "standard output"
                raise GenreError(
                    f"writing {dest} failed: {exc.strerror or exc} (errno {exc.errno}); the lines of {done} file(s) were written before it"
                ) from None
            done += 1
    except BrokenPipeError:  # `genre predict ... | head`: handle_errors stops quietly (exit 0)
        results.close()
        raise
    except KeyboardInterrupt as exc:
        if output and stream is None:  # FILE is opened (and truncated) with the first result only
            exc.add_note(f"no file was classified yet and nothing was written: {output} was not touched")
        else:
            exc.add_note(
                f"{done} file(s) were classified and their lines written {f'to {output}' if output else 'to stdout'}"
                + (f", {failed} failed" if failed else "")
                + "; the files after them were not read"
            )
        raise
    finally:
        if output and stream is not None:
            pending = sys.exc_info()[1]  # an exception already on its way out (Ctrl-C, an error) stays the news
            try:
                stream.close()
            except OSError as exc:  # the last buffered lines could not be written (a full disk)
                from genre_cli.errors import GenreError

                if pending is None:
                    raise GenreError(f"writing {output} failed: {exc.strerror or exc} (errno {exc.errno})") from None
    hidden = f", {stats.hidden} hidden files/folders skipped" if stats.hidden else ""
    con.print(f"{done} classified, {failed} failed, {stats.ignored} non-audio files ignored{hidden}")
    if done == 0 and failed == 0:
        con.print("[bold red]error:[/] no audio files found in the given paths", markup=True, highlight=False)
        raise typer.Exit(2)
    if done == 0:
        raise typer.Exit(2)
    if failed:
        raise typer.Exit(1)


def _check_writable(path: Path) -> None:
    """Refuse (exit 2) an output file that cannot be written, before any work; touch nothing:
    an existing file is opened for appending and closed, a new one created and removed."""
    import os
    import stat

    from genre_cli.errors import UsageError

    try:
        if path.exists():
            mode = path.stat().st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(21, "Is a directory")
            if not stat.S_ISREG(mode):  # a pipe or device: opening it would block or consume it
                if not os.access(path, os.W_OK):
                    raise PermissionError(13, "Permission denied")
                return
            with open(path, "a", encoding="utf-8"):
                pass
        elif path.is_symlink():  # a link to a file not there yet: writing creates the target
            parent = (path.parent / os.readlink(path)).parent
            if not os.access(parent, os.W_OK):
                raise PermissionError(13, f"Permission denied (the link's target folder {parent})")
        else:
            with open(path, "x", encoding="utf-8"):
                pass
            os.unlink(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


class _Writer:
    """One record per file (plus one per window with ``--timeline``), flushed at once.

    tsv/csv columns: ``path, genre, probability[, genre_2, probability_2, ...]`` and, with
    a timeline, ``start, end`` (seconds; empty on the whole-file row). ``top_k`` must be at most
    the model's number of labels (every row has the header's columns). csv (RFC 4180) has a
    header; tsv has none and no quoting: a tab, newline, carriage return or backslash in a field
    is written ``\\t``, ``\\n``, ``\\r``, ``\\\\`` (PostgreSQL's text format), so ``cut -f1`` gives
    the path. For a tagger (``output == "sigmoid"``) the csv header says ``tag, likelihood``.
    jsonl: one :func:`genre_cli.predict.record` per line (a tagger's adds ``"output": "sigmoid"``).
    """

    def __init__(self, stream, fmt: str, top_k: int, timeline: bool, words: tuple[str, str] = ("genre", "probability")):
        import csv

        self.stream, self.fmt, self.k, self.timeline = stream, fmt, top_k, timeline
        self.csv = _TsvWriter(stream) if fmt == "tsv" else csv.writer(stream, lineterminator="\n")
        if fmt == "csv":
            label, score = words
            head = ["path", label, score]
            for i in range(2, top_k + 1):
                head += [f"{label}_{i}", f"{score}_{i}"]
            self.csv.writerow(head + (["start", "end"] if timeline else []))
            stream.flush()

    def write(self, res) -> None:
        from genre_cli.predict import record, top_k

        if self.fmt == "jsonl":
            self.stream.write(json.dumps(record(res, top_k=self.k, timeline=self.timeline)) + "\n")
        else:
            top = res.top(self.k)

            def cells(pairs):
                return [x for g, q in pairs for x in (g, f"{q:.4f}")]

            self.csv.writerow([str(res.path), *cells(top)] + (["", ""] if self.timeline else []))
            for s, e, p in res.windows:
                self.csv.writerow([str(res.path), *cells(top_k(p, res.labels, self.k)), f"{s:.2f}", f"{e:.2f}"])
        self.stream.flush()


class _TsvWriter:
    """Tab-separated rows, unquoted; tab, newline, carriage return and backslash escaped."""

    _ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

    def __init__(self, stream):
        self.stream = stream

    def writerow(self, row) -> None:
        self.stream.write("\t".join(str(x).translate(self._ESCAPES) for x in row) + "\n")


# ----------------------------------------------------------------------------- serve


@app.command(cls=_Command)
@handle_errors
@command_options({"options": ServeConfig.cli_options()}, after="models")
def serve(
    models: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="MODELS",
            help="Model files from `genre train`, or built-in model names \\[default: the built-in genre model].",
            show_default=False,
        ),
    ] = None,
    device: DeviceOpt = "auto",
    options: dict | None = None,
) -> None:
    """Serve a web page and a JSON API that classify uploaded or recorded music.

    The deployment demo of F. Zhang (2022): in the page, choose a model, upload a file or
    record from the microphone, and see the top genres as a bar chart, the per-window
    predictions over time, and the model's card (labels, training data, split, measured
    accuracy). The page loads nothing from the internet.

    API: `POST /api/predict` (multipart: file, optional model and top_k) answers the record of
    `genre predict --format jsonl --timeline` plus model, truncated, analysed_seconds;
    `GET /api/models`; `GET /healthz`. Errors are JSON (413 too large, 422 not audio, 404 unknown
    model, 503 busy). Uploads go to a private temporary folder and are deleted after each request.
    Ctrl-C stops the server (exit code 130).

    Examples (then open http://127.0.0.1:8000/):
      genre serve cnn6.h5
      genre serve cnn6.h5 svm.h5 --port 8080 --workers 4
    """
    from genre_cli import catalog
    from genre_cli.errors import UsageError

    cfg = ServeConfig.from_cli(options or {})
    specs = list(models or [])
    if not specs:
        default = catalog.default_model()
        if default is None:
            raise UsageError(
                "no model given, and no built-in genre model is installed",
                hint="pass a model file: `genre serve model.h5` (`genre run` or `genre train` makes one)",
            )
        specs = [default]
    try:
        from genre_cli.serve import app as web
    except ImportError as exc:
        raise UsageError(
            f"`genre serve` needs the optional web libraries ({exc.name} is not installed)", hint="pip install 'genre-cli[serve]'"
        ) from None
    con = _err()
    served = web.load(specs, device=device)
    sock, url = web.listen(cfg.host, cfg.port)
    if not web.is_loopback(cfg.host):
        con.print(
            f"[bold yellow]warning:[/] listening on {_esc(cfg.host)}: the page and API are reachable from the network, "
            "with no authentication; anyone who reaches it can upload files (default --host 127.0.0.1)",
            markup=True,
            highlight=False,
        )
    service = web.Service(served, cfg)
    names = ", ".join(f"{m.id} ({_esc(m.resolved.card.source)})" for m in served)
    con.print(f"serving {names} at [bold]{url}[/] — Ctrl-C stops", markup=True, highlight=False)
    web.run(service, sock)


# ----------------------------------------------------------------------------- run / info


#: ``genre run`` exposes the options of every stage it runs; one ``--seed`` seeds the split and the training.
_RUN_GROUPS = {
    "fetch_options": tuple(o for o in FetchOptions.cli_options() if o.name != "seed"),
    "segment": tuple(o for o in SegmentConfig.cli_options() if o.name != "seed"),
    "features": FeatureConfig.cli_options(),
    "train": tuple(o for o in TrainConfig.cli_options() if o.name not in ("seed", "resume")),
    "scored": (SCORE_SPLIT_OPTION,),
}


@app.command("run", cls=_Command)
@handle_errors
@command_options(
    _RUN_GROUPS,
    after="source",
    defaults={"train": {"model": "svm"}},  # = pipeline.RUN_DEFAULTS (importing it here would load the stages)
    help_texts={
        "segment": {"hop": "Hop between windows in seconds [default in genre run: half the window, 1.5 s for 3 s windows]."},
        "features": {
            "mel": "Log-mel spectrogram with N bands [default in genre run: the model paper's features "
            "when none selected can fill its input; svm: --handcrafted, cnn6: --mel 128]."
        },
        "train": {"model": "Registered model name (see `genre train --list-models`) [genre run: svm, on the 93 hand-crafted statistics]."},
    },
)
def run_pipeline(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset name (default: the embedded demo).")] = "demo",
    source: Annotated[Optional[str], typer.Option("--from", help="Dataset source (URL, archive, folder).", show_default=False)] = None,
    seed: Annotated[
        Optional[int], typer.Option("--seed", help="Seed of random splits and of training \\[default: 0].", show_default=False)
    ] = None,
    jobs: JobsOpt = 2,
    workdir: WorkdirOpt = None,
    force: ForceOpt = False,
    dry_run: DryOpt = False,
    fetch_options: dict | None = None,
    segment: dict | None = None,
    features: dict | None = None,
    train: dict | None = None,
    scored: dict | None = None,
) -> None:
    """Run fetch → segment → featurize → train → evaluate, skipping stages that are up to date.

    Every option of `genre fetch`, `segment`, `featurize` and `train` is accepted, with the same
    name and default; `--split` names the split the model is scored on (`--split-mode` says how
    splits are made). With no options: the embedded demo dataset (161 drum performances, 4 styles,
    its performer-disjoint split: 46 test tracks), 3 s windows at a 1.5 s hop, an SVM on the 93 hand-crafted statistics
    of Pun & Nazirkhanova (2020) (the model's paper's features), track-level test report.

    Examples:
      genre run
      genre run --dataset folder --from ~/music --labels tracks.csv --group-by artist --split-mode random --model resnet18
    """
    from genre_cli import pipeline

    cfg = pipeline.PipelineConfig(
        dataset=dataset,
        source=source,
        fetch=FetchOptions.from_cli(fetch_options or {}, jobs=jobs, seed=0 if seed is None else seed, progress=sys.stderr.isatty()),
        segment=SegmentConfig.from_cli(segment or {}),
        features=FeatureConfig.from_cli(features or {}),
        train=TrainConfig.from_cli(train or {}, seed=seed),
        split=(scored or {}).get("split", "test"),
        jobs=jobs,
        workdir=workdir,
    )
    results = pipeline.run(cfg, force=force, dry_run=dry_run, on_stage=_report_run_stage)
    last = results[-1]
    if last.status != "would run":
        print_reports(last.summary["reports"])
        r = last.summary["reports"][0]
        typer.echo(
            f"track-level accuracy: {r['track']['accuracy']:.3f} (balanced {r['track']['balanced_accuracy']:.3f}) — "
            f"{r['model_name']} on {r['dataset']}, {r['split']} split, {r['n_tracks']} tracks"
        )


def _report_run_stage(result) -> None:
    """`genre run`'s line per stage, and what a stage command would add that must not go unsaid:
    the tracks `segment` skipped."""
    _report_stage(result)
    if result.stage == "segment" and result.ran and result.summary.get("n_skipped"):
        s = result.summary
        _err().print(f"segment: {s['n_skipped']} tracks skipped, {s['n_tracks']} kept ({s['n_segments']} segments)")
        _print_skipped(result)


@app.command(cls=_Command)
@handle_errors
def info(
    artifact: Annotated[
        str, typer.Argument(metavar="ARTIFACT", help="Any genre HDF5 artifact, or a built-in model's name (genres, musicnn-msd ...).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the description as JSON on stdout.")] = False,
) -> None:
    """What an artifact is: stage, parameters, upstream chain, datasets and shapes, labels, completeness.

    For a model: which feature fills each input, and, with a model card (the built-in genres),
    its training data, split and measured accuracy; for any artifact: how its split was made,
    and whether each upstream file still matches.

    Examples:
      genre info cnn6.h5
      genre info genres
    """
    from genre_cli.describe import describe

    d = describe(artifact)
    if as_json:
        typer.echo(json.dumps(d, indent=2, default=str))
        return

    con = _out(soft_wrap=True, highlight=False)
    state = "[green]complete[/]" if d["complete"] else "[red]INCOMPLETE[/]"
    con.print(f"[bold]{_esc(d['path'])}[/]: stage [bold]{d['stage']}[/] (schema {d['schema_version']}), {state}, created {d['created']}")
    con.print(f"fingerprint {d['fingerprint'][:16]}…  dataset {d.get('dataset', '?')}")
    con.print(f"params {json.dumps(d['params'], sort_keys=True)}")
    if d.get("labels"):
        con.print(f"labels ({len(d['labels'])}): {_esc(', '.join(d['labels']))}")
    if d.get("inputs"):
        con.print(f"inputs: {_esc(_inputs_text(d['inputs'], d.get('input_shapes') or {}))}")
    if d.get("provenance") and "split" not in (d.get("card") or {}):  # a card's own split line says it better
        p = d["provenance"]
        groups = (
            f"; groups: {p['group_by']} ({'kept apart by the split' if p['group_aware'] else 'not kept apart'})" if p["group_by"] else ""
        )
        folds = f"; {p['folds']} folds" if p["folds"] else ""
        con.print(f"split: {_esc(p['split_method'])}{_esc(groups)}{folds}")
    _print_card(con, d.get("card"))
    tr = d.get("training")
    if tr and tr["train"]:
        src = tr["sources"]
        con.print("training settings (source: flag | recipe | paper | plain | default):")
        con.print("  " + ", ".join(f"{k} {v}" + (f" ({src[k]})" if k in src else "") for k, v in tr["train"].items()))
        for key, note in (tr["notes"] or {}).items():
            con.print(f"  {key}: {_esc(str(note))}")
        if tr["epochs_run"]:
            con.print(f"  kept weights of epoch {tr['best_epoch']} of {tr['epochs_run']}")
    con.print("upstream:" if d["chain"] else "upstream: none")
    for item in d["chain"]:
        stage = f"{item['stage']} " if item["stage"] else ""
        con.print(f"  {item['role']}: {stage}{_esc(item['path'])} ({item['status']})")
    con.print("datasets:")
    for name, shape, dtype in d["datasets"]:
        con.print(f"  {_esc(name)} {tuple(shape)} {dtype}")
    con.print(f"versions {json.dumps(d['versions'], sort_keys=True)}")


#: The order a model card's entries are printed in (others follow, sorted).
_CARD_ORDER = ("training_data", "features", "split", "accuracy", "caveat", "artist_filtered", "citation", "license", "source", "command")


def _print_card(con, card: dict | None, *, skip: tuple[str, ...] = ("name", "measured")) -> None:
    """A model card, one ``key: value`` line per entry (nested values as compact JSON; the
    machine-readable ``measured`` entry is left to ``--json``)."""
    card = card or {}
    keys = [k for k in _CARD_ORDER if k in card] + sorted(k for k in card if k not in _CARD_ORDER)
    for key in keys:
        value = card[key]
        if key in skip or value in (None, "", [], {}):
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        con.print(f"[bold]{_esc(key.replace('_', ' '))}[/]: {_esc(text)}")


def _measure(m) -> str:
    """One accuracy of a model card, named by data, split and level."""
    n = f", {m.n} tracks" if m.n else ""
    note = f" ({m.note})" if m.note else ""
    return f"{m.value:.2f} {m.metric}, {m.level} level, {m.data}, {m.split}{n}{note}"


@app.command(cls=_Command)
@handle_errors
def models(
    name: Annotated[Optional[str], typer.Argument(metavar="NAME", help="Show one built-in model in full.", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model cards as JSON.")] = False,
) -> None:
    """The built-in models, with what they were trained on and how well they did (their model cards).

    Usable by name, offline, wherever a model file is accepted (`genre predict genres ~/Music`,
    `genre predict musicnn-msd ~/Music --top-k 5`, `genre evaluate genres FEATURES.h5`,
    `genre info genres`, `genre serve`).

    Examples:
      genre models
      genre models genres --json
    """

    from genre_cli import catalog

    names = [name] if name else catalog.BUILTINS.names()
    built = [catalog.BUILTINS.get(n) for n in names]
    cards = [(b, b.card(b.load(weights=False))) for b in built]
    if as_json:
        typer.echo(json.dumps([c.to_dict() | {"path": str(b.path)} for b, c in cards], indent=2))
        return
    con = _out(soft_wrap=True, highlight=False)
    for i, (b, c) in enumerate(cards):
        if i:
            con.print()
        out = (
            "probabilities over its labels (sum to 1)" if c.output == "softmax" else "independent likelihoods in [0, 1], not a distribution"
        )
        default = ", the default of genre serve" if b.default else ""
        con.print(f"[bold]{c.name}[/] ({'classifier' if c.task == 'genre' else 'tagger'}; {out}{default}): {_esc(b.description)}")
        labels = list(c.labels)
        shown = labels if name or len(labels) <= 12 else [*labels[:12], f"... ({len(labels)} in all)"]
        con.print(f"[bold]labels[/] ({len(labels)}): {_esc(', '.join(shown))}")
        rows = [("training data", c.dataset), ("split", c.split if name else None)]
        rows += [("accuracy", _measure(m)) for m in (c.accuracy if name else c.accuracy[:1])]
        rows += [("test accuracy", c.test_accuracy_note if name else None), ("paper", c.paper), ("licence", c.licence)]
        if name:
            rows += [("input", c.input), ("windows", f"{c.window_seconds:g} s, hop {c.hop_seconds:g} s, {c.sample_rate} Hz")]
            rows += [(k.replace("_", " "), v if isinstance(v, str) else json.dumps(v, sort_keys=True)) for k, v in c.extra.items()]
        for key, value in rows:
            if value:
                con.print(f"[bold]{key}[/]: {_esc(value)}")
        con.print(f"[dim]{_esc(b.path)}[/]")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
