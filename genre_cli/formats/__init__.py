"""One home per artifact format: each module holds a kind's layout, writer, reader and schema version.

=================  =========  =============================================================
module             stage      artifact
=================  =========  =============================================================
``index``          fetch      track index: labels, groups, splits
``segments``       segment    decoded audio (once per track) and the window table
``features``       featurize  per-segment features, train-split normalisation, row tables
``model``          train      weights and everything needed to feed the model
``report``         evaluate   metrics and the predictions behind them
``cv``             cv         cross-validation: per-fold and mean/std scores, track predictions
``checkpoint``     (train)    the sidecar ``--resume`` continues from
``pretrained``     pretrained a converted pretrained network (musicnn weights), shipped or rebuilt
``provenance``     (all)      how the split was made, copied from artifact to artifact
=================  =========  =============================================================

Stages stand side by side on top of this package and never import each other: ``train`` reads
features with :func:`genre_cli.formats.features.read`, not through the featurize stage. The
container itself (attributes, fingerprints, atomic writes, locks, tables) is
:mod:`genre_cli.artifacts`.
"""

from genre_cli.formats import checkpoint, cv, features, index, model, pretrained, provenance, report, segments

__all__ = ["checkpoint", "cv", "features", "index", "model", "pretrained", "provenance", "report", "segments"]
