"""Models by name or by path: the one resolver, and the model card that goes with each model.

Wherever a model is accepted (``genre serve MODEL ...``, ``genre predict MODEL``: through
:func:`genre_cli.inference.load_classifier`), :func:`resolve` turns what the user typed into a
loaded :class:`~genre_cli.inference.Classifier` and its :class:`ModelCard`
(:func:`resolve_path` into the file, for ``evaluate`` and ``info``):

* a **built-in model** name (registered in :data:`BUILTINS` by the module that ships the
  model, :mod:`genre_cli.shipped`: ``genres``, ``musicnn-msd``, ``musicnn-mtt``; names are
  tried first, so a file called like a built-in is reached as ``./NAME``);
* otherwise a **model file** written by ``genre train``.

A built-in plugs in with :func:`register_builtin`: a :class:`Builtin` says what its name is,
what it does (``task``: ``"genre"`` or ``"tags"``), how to load it (``load(device=...,
weights=...)`` returning a ``Classifier``, whose ``output`` is ``"sigmoid"`` for a tagger)
and its card (``card(classifier)``). :func:`default_model` is the built-in that
``genre serve`` uses when no model is given (the first registered with ``task="genre"``).

The card of a model file is read from the file (:func:`card_of_file`): labels, the model
and the paper it comes from, the data and split it was trained on, and the accuracy its
training measured, named by data, split and level (the validation split, selected on; the
file records no test score: ``genre evaluate`` measures that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genre_cli.errors import UsageError
from genre_cli.inference import Classifier
from genre_cli.registry import Registry

#: How a model's scores read.
OUTPUTS = ("softmax", "sigmoid")
#: What a model does.
TASKS = ("genre", "tags")


@dataclass(frozen=True)
class Measure:
    """One score a model file records, named by everything that makes it comparable.

    Attributes
    ----------
    value : float in [0, 1]
    metric : str
        ``"accuracy"``, ``"balanced accuracy"``, ...
    split : str
        Which tracks were scored (``"validation"``: the split the kept epoch was selected
        on, so an optimistic figure; ``"test"``).
    level : str
        ``"track"`` (whole tracks) or ``"segment"`` (windows).
    data : str
        The dataset.
    n : int or None
        Tracks (track level) scored, when known.
    note : str
        Anything else a reader needs to know.
    """

    value: float
    metric: str
    split: str
    level: str
    data: str
    n: int | None = None
    note: str = ""


@dataclass(frozen=True)
class ModelCard:
    """What a person should know about a model before trusting its answers.

    ``None`` (or an empty tuple) means "not recorded"; pages say so rather than hide it.
    """

    name: str  #: how it is asked for: built-in name or the file's stem
    source: str  #: "built-in" or the model file's name
    architecture: str  #: registered model (``cnn6``, ``musicnn``)
    labels: tuple[str, ...]
    builtin: bool = False
    task: str = "genre"  #: one of :data:`TASKS`
    output: str = "softmax"  #: one of :data:`OUTPUTS`
    paper: str | None = None  #: the architecture's paper, short citation
    description: str = ""
    dataset: str | None = None  #: training data
    split: str | None = None  #: how the train/validation/test split was made
    groups: str | None = None  #: the grouping (artist, performer) and whether the split keeps groups apart
    n_train_tracks: int | None = None
    n_validation_tracks: int | None = None
    accuracy: tuple[Measure, ...] = ()
    test_accuracy_note: str = "not recorded in the model file (`genre evaluate` measures it on a held-out split)"
    input: str | None = None  #: features and shape (``mel, 130 x 128``)
    window_seconds: float | None = None
    hop_seconds: float | None = None
    sample_rate: int | None = None
    epochs: str | None = None  #: ``"best 7 of 10"``
    trained: str | None = None  #: ISO time the file was written
    licence: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples as lists)."""
        d = asdict(self)
        d["labels"] = list(self.labels)
        d["accuracy"] = [asdict(m) for m in self.accuracy]
        return d


@dataclass(frozen=True)
class Builtin:
    """A model shipped with the package, resolvable by name.

    Attributes
    ----------
    name : str
    task : {"genre", "tags"}
    description : str
        One line for listings.
    load : callable
        ``load(*, device: str, weights: bool) -> Classifier``; ``weights=False`` may return a
        classifier whose ``model`` is None (description only).
    card : callable
        ``card(classifier) -> ModelCard``.
    default : bool
        The model ``genre serve`` uses when none is given (among those of its task).
    path : Path or None
        The file holding it, when there is one (:func:`resolve_path`).
    """

    name: str
    task: str
    description: str
    load: Callable[..., Classifier]
    card: Callable[[Classifier], ModelCard]
    default: bool = False
    path: Path | None = None  #: the shipped file, for commands that read files (``evaluate``, ``info``)


#: Built-in models by name (empty until a module registers one).
BUILTINS: Registry[Builtin] = Registry("built-in model")


def register_builtin(builtin: Builtin) -> Builtin:
    """Add a built-in model (a duplicate name is a ``ValueError``)."""
    if builtin.task not in TASKS:
        raise ValueError(f"built-in {builtin.name!r}: task must be one of {TASKS}, got {builtin.task!r}")
    return BUILTINS.register(builtin.name, task=builtin.task, description=builtin.description)(builtin)


def default_model(task: str = "genre") -> str | None:
    """Name of the built-in model doing ``task`` marked ``default`` (else the first by name);
    None when no built-in does ``task``."""
    names = [n for n in BUILTINS.names() if BUILTINS.get(n).task == task]
    return next((n for n in names if BUILTINS.get(n).default), names[0] if names else None)


@dataclass
class Resolved:
    """A loaded model and its card."""

    classifier: Classifier
    card: ModelCard


def resolve(spec: str | Path, *, device: str = "cpu", weights: bool = True) -> Resolved:
    """Load the model ``spec`` names: a built-in model's name, else a model file's path.

    Parameters
    ----------
    spec : str or Path
        A :class:`~pathlib.Path` is always a file; a string is a built-in name when one is
        registered under it, else a path.
    device : str
        ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
    weights : bool
        False: the description only (no torch import for a model file).

    Raises
    ------
    UsageError
        ``spec`` looks like a name (no suffix, no folder) and is neither a built-in nor a file.
    MissingInputError, ArtifactError
        Missing or unusable model file.
    """
    if isinstance(spec, str) and spec in BUILTINS:
        b = BUILTINS.get(spec)
        clf = b.load(device=device, weights=weights)
        return Resolved(clf, b.card(clf))
    path = Path(spec)
    if isinstance(spec, str) and not path.exists() and not path.suffix and len(path.parts) == 1:
        names = ", ".join(BUILTINS.names()) or "none are installed"
        raise UsageError(
            f"unknown model {spec!r}: no built-in model has that name (built-in models: {names}) and there is no such file",
            hint="give a model file from `genre train` or `genre run`",
        )
    from genre_cli.inference import load_classifier

    clf = load_classifier(path, device=device, weights=weights)
    return Resolved(clf, card_of_file(path, clf))


def resolve_path(spec: str | Path, *, what: str = "model") -> Path:
    """The file ``spec`` names, for commands that read model files (``evaluate``, ``info``):
    a built-in model's shipped file, else ``spec`` as a path (same rules and errors as
    :func:`resolve`; a missing file is left to the reader, which says so). ``what``: "model", or
    "artifact" for ``genre info``, which describes any artifact (only the message differs).

    Raises
    ------
    UsageError
        ``spec`` looks like a name and is neither a built-in nor a file, or names a built-in
        that has no file.
    """
    if isinstance(spec, str) and spec in BUILTINS:
        b = BUILTINS.get(spec)
        if b.path is None:
            raise UsageError(f"built-in model {spec!r} has no model file")
        return b.path
    path = Path(spec)
    if isinstance(spec, str) and not path.exists() and not path.suffix and len(path.parts) == 1:
        names = ", ".join(BUILTINS.names()) or "none are installed"
        if what == "artifact":  # genre info: any artifact
            raise UsageError(
                f"no such file {spec!r}, and no built-in model has that name (built-in models: {names})",
                hint="give a genre artifact (.h5: an index, segments, features, model, evaluation or cv report) or a built-in model's name",
            )
        raise UsageError(
            f"unknown model {spec!r}: no built-in model has that name (built-in models: {names}) and there is no such file",
            hint="give a model file from `genre train` or `genre run`",
        )
    return path


def card_of_file(path: str | Path, clf: Classifier | None = None) -> ModelCard:
    """The card of a model file written by ``genre train`` (read from the file; no weights).

    The accuracy recorded is the kept epoch's validation score (track level, and segment
    level when recorded): the split the epoch was selected on.
    """
    from genre_cli import artifacts
    from genre_cli.formats import model as model_format
    from genre_cli.formats import pretrained
    from genre_cli.windows import SegmentConfig

    path = Path(path)
    if artifacts.read_meta(path).stage == pretrained.KIND.stage:  # a musicnn weight file: a tagger
        from genre_cli.shipped import tagger_card

        return tagger_card(path, clf)
    desc = model_format.read(path)
    rec = model_format.training(path)
    prov = desc.provenance
    paper, about = None, ""
    try:
        from genre_cli.models import model_info

        info = model_info(desc.name)
        paper, about = info["source"] or None, info["description"]
    except UsageError:  # a model this version does not know: the card still says what the file says
        pass
    n_val = rec.tracks.get("validation")
    accuracy = []
    for key, level, n in (("val_track_accuracy", "track", n_val), ("val_accuracy", "segment", None)):
        value = rec.best.get(key)
        if isinstance(value, (int, float)):
            accuracy.append(
                Measure(
                    round(float(value), 4),
                    "accuracy",
                    "validation",
                    level,
                    prov.dataset,
                    n,
                    f"epoch {rec.best_epoch}, selected on this split (optimistic)" if rec.epochs_run > 1 else "",
                )
            )
    groups = None
    if prov.group_by:
        groups = f"{prov.group_by} ({'kept apart by the split' if prov.group_aware else 'not kept apart by the split'})"
    try:
        seg = SegmentConfig.from_params(desc.segment_config)
        win_s, hop_s, sr = seg.win / seg.sr, seg.hop_samples / seg.sr, seg.sr
    except (UsageError, TypeError, ValueError):
        win_s = hop_s = sr = None
    shapes = "; ".join(f"{feat}, {' x '.join(map(str, desc.input_shapes[slot]))}" for slot, feat in desc.inputs.items())
    return ModelCard(
        name=path.stem,
        source=path.name,
        architecture=desc.name,
        labels=tuple(desc.labels),
        output=clf.output if clf is not None else "softmax",
        paper=paper,
        description=about,
        dataset=prov.dataset,
        split=prov.split_method,
        groups=groups,
        n_train_tracks=rec.tracks.get("train"),
        n_validation_tracks=n_val,
        accuracy=tuple(accuracy),
        input=shapes,
        window_seconds=round(win_s, 3) if win_s else None,
        hop_seconds=round(hop_s, 3) if hop_s else None,
        sample_rate=sr,
        epochs=f"best {rec.best_epoch} of {rec.epochs_run}" if rec.epochs_run else None,
        trained=rec.created or None,
    )


# The models shipped with the package register themselves here (after the definitions above).
from genre_cli import shipped as _shipped  # noqa: E402,F401
