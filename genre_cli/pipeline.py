"""``genre run``: fetch → segment → featurize → train → evaluate, skipping up-to-date stages.

Like ``dvc repro``: each stage's output name and fingerprint derive from its parameters and
its inputs' fingerprints, so a changed parameter reruns that stage and everything after it,
and nothing before it.

``genre run`` takes every option of ``fetch``, ``segment``, ``featurize`` and ``train`` from
their config classes (same names, same defaults). Two things it decides that the stage
commands leave to the user, both declared here:

* :data:`RUN_DEFAULTS` -- windows overlap by half unless ``--hop`` is given (a 1.5 s hop for the
  3 s default window, 0.5 s for ``--seconds 1``: :data:`RUN_HOP_FRACTION`), and
  the model is an SVM on the hand-crafted statistics: of the heads and features that
  ``tools/demo_study.py`` compares on the demo (SVM and logistic regression on the hand-crafted
  statistics, MFCC statistics and the musicnn-msd embedding), the best on average over every
  performer-disjoint split (track-level balanced accuracy 0.57, lowest 0.47, chance 0.25), and
  it trains in a second;
* :func:`features_for` -- each input of the model that no selected feature can fill gets the
  feature the model's paper used, with its usual settings (``cnn6``: 128-band log-mel;
  ``lstm``: the 30x30 MFCC sequence; ``cnn-mlp``: log-mel and the hand-crafted statistics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from genre_cli import evaluate, featurize, fetch, segment, train
from genre_cli.datasets import FetchOptions, check_score_split
from genre_cli.features import FeatureConfig
from genre_cli.features import kind as feature_kinds
from genre_cli.inference import check_device
from genre_cli.stage import StageResult
from genre_cli.training.config import TrainConfig
from genre_cli.windows import SegmentConfig

STAGES = ("fetch", "segment", "featurize", "train", "evaluate")

#: Options ``genre run`` sets differently from the stage commands, by config group.
RUN_DEFAULTS: dict[str, dict[str, object]] = {"train": {"model": "svm"}}
#: With no ``--hop``, ``genre run`` steps windows by this fraction of their length (half: every
#: instant of a track lies in two windows).
RUN_HOP_FRACTION = 0.5


@dataclass
class PipelineConfig:
    """One configuration of the whole pipeline (defaults: the embedded demo dataset)."""

    dataset: str = "demo"
    source: str | None = None
    root: str | Path | None = None
    fetch: FetchOptions = field(default_factory=FetchOptions)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(**RUN_DEFAULTS["train"]))
    split: str = "test"
    jobs: int = 2
    workdir: str | Path | None = None

    def __post_init__(self) -> None:
        self.split = check_score_split(self.split)
        if self.segment.hop is None:  # the run default: half the window, whatever its length
            self.segment = self.segment.replace(hop=round(self.segment.win / self.segment.sr * RUN_HOP_FRACTION, 6))


def features_for(model: str, cfg: FeatureConfig) -> FeatureConfig:
    """``cfg`` plus, for each input slot of ``model`` that none of ``cfg``'s features can fill,
    the feature the model's paper used there (else the slot's first feature) with its usual
    settings (:attr:`~genre_cli.features.FeatureKind.suggested`)."""
    from genre_cli.models import model_info

    info = model_info(model)
    selected = set(cfg.names())
    add: dict[str, object] = {}
    for slot in info["inputs"]:
        choices = feature_kinds.slot_choices(slot)
        if selected & set(choices):
            continue
        name = (info.get("features") or {}).get(slot) or next(c for c in choices if feature_kinds.get(c).compute is not None)
        add |= feature_kinds.get(name).suggested
        selected.add(name)
    return cfg.replace(**add) if add else cfg


def run(
    cfg: PipelineConfig,
    *,
    force: bool = False,
    dry_run: bool = False,
    show_progress: bool = True,
    on_stage: Callable[[StageResult], None] | None = None,
    on_epoch=None,
) -> list[StageResult]:
    """Run every stage in order; ``force`` reruns all of them; ``dry_run`` runs none.

    In a dry run a stage whose input would be rebuilt is reported as ``would run`` without
    looking further (its input does not exist yet).
    """
    results: list[StageResult] = []
    check_device(cfg.train.device)  # refused before fetch, not after featurize
    features = features_for(cfg.train.model, cfg.features)

    def step(name: str, fn) -> StageResult | None:
        if dry_run and results and results[-1].status == "would run":
            r = StageResult(name, Path(f"(named once {results[-1].stage} has run)"), "", "would run")
        else:
            r = fn()
        results.append(r)
        if on_stage:
            on_stage(r)
        return r

    common = {"workdir": cfg.workdir, "force": force, "dry_run": dry_run}
    idx = step("fetch", lambda: fetch.run(cfg.dataset, source=cfg.source, root=cfg.root, options=cfg.fetch, **common))
    seg = step("segment", lambda: segment.run(idx.path, config=cfg.segment, jobs=cfg.jobs, show_progress=show_progress, **common))
    feat = step("featurize", lambda: featurize.run(seg.path, config=features, jobs=cfg.jobs, show_progress=show_progress, **common))
    model = step("train", lambda: train.run(feat.path, config=cfg.train, show_progress=show_progress, on_epoch=on_epoch, **common))
    step("evaluate", lambda: evaluate.run([model.path], feat.path, split=cfg.split, device=cfg.train.device, **common))
    return results
