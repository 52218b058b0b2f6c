"""``train`` stage: fit a registered model on the train split, select on validation, save.

The stage resolves what to train (the model's inputs from the features file, the
hyper-parameters: :mod:`genre_cli.training.config`), runs the training engine
(:mod:`genre_cli.training.loop`; data-parallel under ``torchrun``,
:mod:`genre_cli.training.distributed`) and writes the model artifact
(:mod:`genre_cli.formats.model`). Checkpoints: after every epoch rank 0 atomically writes
``<out>.ckpt.h5`` (:mod:`genre_cli.formats.checkpoint`); ``resume=True`` continues from it
when its resume key (the fingerprint without ``patience``, and without ``epochs`` under a
constant learning rate) matches; it is removed after the model artifact is written.

``class_weights: auto`` (the default recipe) is resolved here against the training labels
(:func:`genre_cli.training.recipe.auto_class_weights`); the artifact's ``train_notes`` says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli import artifacts
from genre_cli.errors import InputError, UsageError
from genre_cli.formats import checkpoint
from genre_cli.formats import features as feat_format
from genre_cli.formats import model as model_format
from genre_cli.inference import Classifier, check_device, resolve_inputs
from genre_cli.stage import StageResult, default_output, execute, planned_fingerprint, slugify
from genre_cli.training import recipe
from genre_cli.training.config import RESUME_FREE, TrainConfig, resolve_hparams, without_validation
from genre_cli.training.distributed import Dist
from genre_cli.training.loop import TrainJob, fit_sklearn, fit_torch, model_shapes

__all__ = ["TrainConfig", "check", "run"]


def run(
    features_path: str | Path,
    *,
    config: TrainConfig,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    force: bool = False,
    dry_run: bool = False,
    show_progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> StageResult:
    """Train ``config.model`` on a features artifact and write the model artifact.

    Parameters
    ----------
    on_epoch : callable(record) or None
        Called on rank 0 after each epoch (after its checkpoint is written) with the history
        record (``epoch``, ``loss``, ``train_accuracy``, ``val_*``, ``seconds``, ``samples_per_s``).
    on_notice : callable(text) or None
        Called before training starts with each warning known then: an option given but not
        applied (an sklearn model's training options; ``select``/``patience`` without a
        validation split: :func:`~genre_cli.training.config.without_validation`), said even when
        the model is up to date, and a model input filled with another feature than its paper's.
        Without it, those warnings join the result's.

    Returns
    -------
    StageResult
        ``summary``: ``model``, ``best_epoch``, ``val_track_accuracy``, ``epochs_run``,
        ``seconds``, ``device``, ``amp``, ``n_train``/``n_val`` segments, ``train`` (resolved
        hyper-parameters), ``resumed_from`` (epoch or None), ``inputs`` (slot -> feature),
        ``input_shapes`` (slot -> per-segment shape), ``paper_inputs`` (slot -> the feature
        the model's paper used there, for slots filled otherwise).

    Raises
    ------
    UsageError
        Unknown model / optimizer, invalid values, features that cannot fill the model's inputs.
    DeviceError
        CUDA asked for but not available (never a silent CPU fallback).
    """
    from genre_cli.models import model_info

    info = model_info(config.model)  # unknown name → UsageError with the valid names
    device = check_device(config.device)  # before any work, for every model kind
    feats = feat_format.read(features_path)
    inputs, shapes, model_config, hp, sources = check(feats, config)
    paper_inputs, early = _paper_inputs(config, info, inputs, feats)
    notes: dict[str, str] = {}
    if hp.get("class_weights") == "auto":
        y_train = feats.segments["label"][_split_rows(feats, "train")]
        hp["class_weights"], why = recipe.auto_class_weights(np.bincount(y_train[y_train >= 0], minlength=len(feats.labels)))
        notes["class_weights"] = f"auto -> {hp['class_weights']}: {why}"
    # options given but not applied: said whether the model is trained now or is up to date
    unapplied: list[str] = []
    if info["kind"] == "torch" and not np.any((feats.segments["split"] == "validation") & (feats.segments["label"] >= 0)):
        dropped, said = without_validation(hp, sources)
        notes |= dropped
        unapplied += [f"{feats.path.name}: {w}" for w in said]
    params = {"model": config.model, "model_config": model_config, "inputs": inputs, "train": hp}
    upstream = {"features": (feats.meta.fingerprint, feats.path)}
    stage = model_format.KIND.stage
    fp = planned_fingerprint(stage, params, upstream)
    out_path = Path(out) if out else default_output(workdir, feats.dataset, f"model-{slugify(config.model)}-s{config.seed_value}", fp)
    free = RESUME_FREE if hp.get("schedule", "constant") == "constant" else ("patience",)  # a schedule's lr depends on epochs
    resume_key = planned_fingerprint(stage, params | {"train": {k: v for k, v in hp.items() if k not in free}}, upstream)
    job = TrainJob(
        feats, config, info, inputs, shapes, model_config, hp, sources, out_path, resume_key, show_progress, on_epoch, notes=notes
    )
    job.paper_inputs = paper_inputs
    if on_notice is None:
        job.warnings += early
    if info["kind"] == "sklearn":
        ignored = [k for k in (*recipe.KEYS, "amp", "stream") if getattr(config, k) not in (None, "auto")]
        ignored += ["paper"] if config.paper else []
        ignored += [f"device {device} (sklearn models run on the CPU)"] if device.startswith("cuda") else []
        if ignored:
            unapplied.append(f"{config.model} is an sklearn model: {', '.join(ignored)} ignored")

    dist = Dist.from_env()
    if on_notice is not None and dist.main:
        for text in unapplied:
            on_notice(text)
        if force or not artifacts.is_up_to_date(out_path, fp):  # not when skipped
            for text in early:
                on_notice(text)
    if not dist.main and info["kind"] == "sklearn":  # under torchrun, rank 0 alone fits an sklearn model
        return StageResult(stage, out_path, fp, "skipped", {"rank": dist.rank})
    if info["kind"] == "torch":
        job.dist = dist
    try:
        result = execute(
            stage=stage,
            params=params,
            upstream=upstream,
            build=lambda f: build(job, f),
            out=out_path,
            workdir=workdir,
            dataset=feats.dataset,
            slug="",
            force=force,
            dry_run=dry_run,
            writer=dist.main,
        )
    except KeyboardInterrupt as exc:  # say what an interrupted run kept (the CLI prints the notes)
        ckpt = checkpoint.path_for(out_path)
        if job.checkpointed is not None and ckpt.exists():
            exc.add_note(f"epoch {job.checkpointed} is kept in {ckpt}: rerun the same command with --resume to continue from it")
        elif info["kind"] == "torch":
            exc.add_note("no epoch had finished: rerun the command to start over")
        else:
            exc.add_note("rerun the command to start over")
        raise
    finally:
        dist.close()
    if on_notice is None:
        result.warnings = unapplied + result.warnings
    if result.ran and dist.main:
        checkpoint.path_for(out_path).unlink(missing_ok=True)  # the model is in place: the checkpoint is spent
    if not dist.main:
        result.summary["rank"] = dist.rank
    return result


def check(feats: feat_format.Features, config: TrainConfig) -> tuple[dict, dict, dict, dict, dict]:
    """Everything :func:`run` refuses before training, without training: the model's name, its
    options (``--set``, by building it once), its inputs (``--input``) from ``feats``, and the
    hyper-parameters (``genre cv`` checks every model with it before training any).

    Returns
    -------
    tuple
        ``(inputs, shapes, model_config, hp, sources)``: slot -> feature, slot -> per-segment
        shape, the model's options (an sklearn model's ``random_state`` added from the seed),
        resolved hyper-parameters and their sources (:func:`resolve_hparams`).

    Raises
    ------
    UsageError
        Unknown model or model option, invalid values, features that cannot fill the model's inputs.
    InputError
        Fewer than two labels.
    """
    from genre_cli.models import build_model, model_info

    info = model_info(config.model)
    unknown = sorted(set(config.features) - set(info["inputs"]))
    if unknown:
        raise UsageError(
            f"--input {', '.join(unknown)}: model {config.model!r} has no such input slot; its inputs: {', '.join(info['inputs'])}"
        )
    suggested = {slot: name for slot, name in (info.get("features") or {}).items() if name in feats.names}
    inputs = resolve_inputs(config.model, tuple(info["inputs"]), feats.names, prefer=suggested | dict(config.features))
    shapes = {slot: tuple(feats.shapes[name]) for slot, name in inputs.items()}
    if len(feats.labels) < 2:
        raise InputError(f"{feats.path}: needs at least two labels, has {feats.labels}")
    model_config = dict(config.model_config)
    if info["kind"] == "sklearn" and "random_state" in info["config"] and "random_state" not in model_config:
        model_config["random_state"] = config.seed_value
    probe = build_model(config.model, n_classes=len(feats.labels), input_shapes=model_shapes(info, shapes), **model_config)
    declares_l2 = bool(getattr(probe, "l2_penalties", None))
    del probe
    hp, sources = resolve_hparams(config, info, declares_l2=declares_l2)
    return inputs, shapes, model_config, hp, sources


def _paper_inputs(config: TrainConfig, info: dict[str, Any], inputs: dict[str, str], feats) -> tuple[dict[str, str], list[str]]:
    """The slots filled with another feature than the model's paper used there (``{slot:
    paper feature}``), and a warning for each one the user did not choose with ``--input``."""
    from genre_cli.features.kind import make_hint

    paper = info.get("features") or {}
    differ = {slot: paper[slot] for slot, used in inputs.items() if paper.get(slot) and paper[slot] != used}
    warnings = [
        f"{config.model}'s paper ({info.get('source') or 'its source'}) feeds its {slot} input with {want}, which "
        f"{feats.path.name} does not have: training on {inputs[slot]} instead; "
        f"`genre featurize SEGMENTS {make_hint(want)}` makes {want}"
        for slot, want in differ.items()
        if slot not in config.features
    ]
    return differ, warnings


def _split_rows(feats: feat_format.Features, split: str) -> np.ndarray:
    return np.flatnonzero(feats.segments["split"] == split)


def build(job: TrainJob, f) -> dict[str, Any]:
    """Train ``job``, then (the writing rank, ``f`` not None) write the model into ``f``."""
    feats = job.feats
    tr_rows, va_rows = _split_rows(feats, "train"), _split_rows(feats, "validation")
    if len(tr_rows) == 0:
        raise InputError(f"{feats.path}: no segments in the train split", hint="check the index's splits with `genre info`")
    labels = feats.segments["label"]
    if np.any(labels[tr_rows] < 0):
        raise InputError(f"{feats.path}: some training segments have no label")
    va_rows = va_rows[labels[va_rows] >= 0]
    seen = np.unique(labels[tr_rows])
    if len(seen) < 2:
        raise InputError(
            f"{feats.path}: the train split has segments of only one label ({feats.labels[int(seen[0])]}); a classifier needs at least two",
            hint="check the index's splits with `genre info`",
        )
    absent = [lab for i, lab in enumerate(feats.labels) if i not in set(seen.tolist())]
    if absent:
        them = "it" if len(absent) == 1 else "them"
        job.warnings.append(
            f"the train split has no segment of {', '.join(absent)}: {job.cfg.model} cannot learn {them}"
            + (f" and gives {them} probability 0" if job.info["kind"] == "sklearn" else "")
        )
    norm = {name: feats.norm[name] for name in job.inputs.values() if name in feats.norm}
    clf = Classifier(
        job.cfg.model,
        job.info["kind"],
        feats.labels,
        job.inputs,
        job.shapes,
        norm,
        feats.feature_config,
        feats.segment_config,
        None,
        config=job.model_config,
    )
    t0 = time.perf_counter()
    if job.info["kind"] == "sklearn":
        fit = fit_sklearn(job, clf, tr_rows, va_rows)
    else:
        fit = fit_torch(job, clf, tr_rows, va_rows)
    seconds = time.perf_counter() - t0
    best = next((r for r in fit["history"] if r["epoch"] == fit["best_epoch"]), {})
    summary = {
        "model": job.cfg.model,
        "best_epoch": fit["best_epoch"],
        "epochs_run": len(fit["history"]),
        "seconds": round(seconds, 2),
        "device": fit["device"],
        "amp": fit.get("amp", "off"),
        "n_train": int(len(tr_rows)),
        "n_val": int(len(va_rows)),
        "val_track_accuracy": best.get("val_track_accuracy"),
        "val_track_balanced_accuracy": best.get("val_track_balanced_accuracy"),
        "inputs": job.inputs,
        "input_shapes": {slot: list(shape) for slot, shape in job.shapes.items()},
        "paper_inputs": job.paper_inputs,
        "train": job.hp,
        "train_sources": job.sources,
        "train_notes": job.notes,
        "resumed_from": fit.get("resumed_from"),
        "stream": fit.get("stream", False),
        "warnings": job.warnings + fit.get("warnings", []),
    }
    if f is not None:
        _write(f, clf, job, fit, seconds)
    return summary


def _write(f, clf: Classifier, job: TrainJob, fit: dict[str, Any], seconds: float) -> None:
    from genre_cli.models import persist

    save = persist.save_torch if clf.kind == "torch" else persist.save_sklearn
    model_format.write(
        f,
        name=clf.name,
        kind=clf.kind,
        labels=clf.labels,
        inputs=clf.inputs,
        input_shapes=clf.input_shapes,
        norm=clf.norm,
        model_config=clf.config,
        feature_config=clf.feature_config,
        segment_config=clf.segment_config,
        save_weights=lambda group: save(group, clf.model),
        tracks=job.feats.tracks,
        history=fit["history"],
        best_epoch=fit["best_epoch"],
        train=job.hp,
        train_sources=job.sources,
        train_notes=job.notes,
        device=fit["device"],
        amp=fit.get("amp", "off"),
        world_size=int(fit.get("world_size", 1)),
        stream=bool(fit.get("stream", False)),
        wall_seconds=seconds,
        features_fingerprint=job.feats.meta.fingerprint,
        prov=job.feats.provenance,
    )
