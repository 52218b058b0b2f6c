"""The training engine behind ``genre train`` (the stage itself is :mod:`genre_cli.train`).

* :mod:`~genre_cli.training.config` -- :class:`TrainConfig` (options and validation) and the
  resolution of hyper-parameters: flags, else the recipe (with the model's changes), or with
  ``--paper`` the model's paper, else plain values;
* :mod:`~genre_cli.training.data` -- a split held in memory or streamed from HDF5, in batches;
* :mod:`~genre_cli.training.loop` -- the epoch loop (:func:`~genre_cli.training.loop.fit_torch`),
  the sklearn fit, validation metrics, optimizer, augmentation;
* :mod:`~genre_cli.training.distributed` -- the data-parallel context under ``torchrun``;
* :mod:`~genre_cli.training.recipe` -- the default recipe, ``--paper``'s plain values, automatic
  class weights; :mod:`~genre_cli.training.augment` (batch augmentation, mixup),
  :mod:`~genre_cli.training.schedule` (learning-rate factors) and
  :mod:`~genre_cli.training.averaging` (weight EMA, which epoch's weights are kept), its parts.

Checkpoints are a file format: :mod:`genre_cli.formats.checkpoint`.
"""
