"""Built-in models: shipped with the package, usable by name wherever a model file is accepted.

=================  ==========  ==============================================================
name               kind        what it is
=================  ==========  ==============================================================
``genres``         classifier  one of the 10 GTZAN genres per file: logistic regression on
                               musicnn-msd embeddings, trained on 50 real GTZAN clips
``musicnn-msd``    tagger      musicnn (Pons & Serra 2019) trained on the Million Song Dataset:
                               50 Last.fm tag likelihoods
``musicnn-mtt``    tagger      musicnn trained on MagnaTagATune: 50 tag likelihoods
=================  ==========  ==============================================================

:func:`resolve` is the one place a name becomes a file: :func:`genre_cli.inference.load_classifier`
(``predict``, ``serve``), ``evaluate`` and ``info`` all go through it. A built-in name wins over a
file of the same name in the current folder; write ``./genres`` to mean the file. Names are
matched as given (``str``); a :class:`~pathlib.Path` is always a path.

A tagger's outputs are independent likelihoods (sigmoids), not a distribution over classes:
:attr:`Builtin.output` says so, and ``predict`` reports them as ``tag`` / ``likelihood``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genre_cli.pretrained.variants import VARIANTS
from genre_cli.registry import Registry

#: Where built-in model files live inside the package.
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Builtin:
    """One built-in model.

    Attributes
    ----------
    name : str
        What users type (``genre predict genres ~/Music``).
    kind : {"classifier", "tagger"}
        ``classifier``: one label per file, probabilities sum to 1 (``output="softmax"``);
        ``tagger``: independent tag likelihoods in [0, 1] (``output="sigmoid"``).
    file : str
        Path of the model file relative to ``genre_cli/data``.
    summary : str
        One line for ``genre models``.
    """

    name: str
    kind: str
    file: str
    summary: str

    @property
    def path(self) -> Path:
        return DATA_DIR / self.file

    @property
    def output(self) -> str:
        return "sigmoid" if self.kind == "tagger" else "softmax"


BUILTINS: Registry[Builtin] = Registry("built-in model")


def _register(b: Builtin) -> Builtin:
    return BUILTINS.register(b.name)(b)


GENRES = _register(
    Builtin(
        "genres",
        "classifier",
        "models/genres.h5",
        "10 GTZAN genres: logistic regression on musicnn-msd embeddings of 3-s windows, trained on 50 real GTZAN clips",
    )
)
for _v in VARIANTS.values():
    _register(Builtin(_v.name, "tagger", f"pretrained/{_v.filename}", f"musicnn (Pons & Serra 2019) tagger: {_v.dataset}"))


def is_builtin(spec: object) -> bool:
    """True when ``spec`` is a built-in model's name (a ``str``, never a ``Path``)."""
    return isinstance(spec, str) and spec in BUILTINS


def resolve(spec: str | Path) -> Path:
    """The model file ``spec`` names: a built-in's shipped file, else ``spec`` as a path.

    Raises
    ------
    MissingInputError
        ``spec`` is neither a built-in name nor an existing file (the message lists the
        built-in names).
    """
    from genre_cli.errors import MissingInputError

    if is_builtin(spec):
        return BUILTINS.get(str(spec)).path
    path = Path(spec)
    if not path.exists():
        hint = f"built-in models: {', '.join(BUILTINS.names())} (`genre models`); or train one with `genre train`"
        raise MissingInputError(f"{spec}: no such model file, and not a built-in model name", hint=hint)
    return path


def card(name: str) -> dict[str, Any]:
    """What ``genre models`` shows about built-in ``name``: kind, output, labels, training
    data, how it was measured, licence and citation -- read from the shipped file itself."""
    b = BUILTINS.get(name)
    out: dict[str, Any] = {"name": b.name, "kind": b.kind, "output": b.output, "summary": b.summary, "path": str(b.path)}
    if b.kind == "tagger":
        from genre_cli.formats import pretrained

        info = pretrained.read_info(b.path)
        out |= {
            "labels": info["labels"],
            "training_data": info["dataset"],
            "citation": info["citation"],
            "license": f"{info['license']} ({info['copyright']})",
            "source": f"{info['source'].get('requirement', '')} wheel, sha256 {info['source'].get('sha256', '')[:16]}…",
        }
    else:
        from genre_cli.formats import model

        with model.open_model(b.path) as (m, _weights):
            out |= {"labels": list(m.labels), "model": m.name, "inputs": dict(m.inputs)}
        out |= model.read_card(b.path)
    return out
