"""``genre run``: fetch → segment → featurize → train → evaluate, skipping up-to-date stages.

Like ``dvc repro``: each stage's output name and fingerprint derive from its parameters and
its inputs' fingerprints, so a changed parameter reruns that stage and everything after it,
and nothing before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from genre_cli import evaluate, featurize, fetch, segment, train
from genre_cli.datasets import FetchOptions
from genre_cli.features import FeatureConfig
from genre_cli.segment import SegmentConfig
from genre_cli.stage import StageResult
from genre_cli.train import TrainConfig

STAGES = ("fetch", "segment", "featurize", "train", "evaluate")


@dataclass
class PipelineConfig:
    """One configuration of the whole pipeline (defaults: the embedded demo dataset)."""

    dataset: str = "demo"
    source: str | None = None
    root: str | Path | None = None
    fetch: FetchOptions = field(default_factory=FetchOptions)
    segment: SegmentConfig = field(default_factory=lambda: SegmentConfig(seconds=3.0, hop=1.5))
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(mel=128))
    train: TrainConfig = field(default_factory=TrainConfig)
    split: str = "test"
    jobs: int = 2
    workdir: str | Path | None = None


def run(cfg: PipelineConfig, *, force: bool = False, dry_run: bool = False, show_progress: bool = True,
        on_stage: Callable[[StageResult], None] | None = None, on_epoch=None) -> list[StageResult]:
    """Run every stage in order; ``force`` reruns all of them; ``dry_run`` runs none.

    In a dry run a stage whose input would be rebuilt is reported as ``would run`` without
    looking further (its input does not exist yet).
    """
    results: list[StageResult] = []

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
    feat = step("featurize", lambda: featurize.run(seg.path, config=cfg.features, jobs=cfg.jobs, show_progress=show_progress, **common))
    model = step("train", lambda: train.run(feat.path, config=cfg.train, show_progress=show_progress, on_epoch=on_epoch, **common))
    step("evaluate", lambda: evaluate.run([model.path], feat.path, split=cfg.split, device=cfg.train.device, **common))
    return results
