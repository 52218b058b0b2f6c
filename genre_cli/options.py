"""Options declared once, by the config class that owns them.

A config class (:class:`~genre_cli.windows.SegmentConfig`,
:class:`~genre_cli.features.FeatureConfig`, :class:`~genre_cli.training.config.TrainConfig`,
:class:`~genre_cli.datasets.FetchOptions`) declares each of its options as an :class:`Option`:
name, type, default, allowed range or choices, help text and command-line flag. The class
validates values with those declarations (so the library and the command line reject the
same things with the same words), and every command that exposes the config builds its
options from them (:func:`command_options`), so ``genre segment``, ``genre featurize``,
``genre train`` and ``genre run`` cannot drift apart. The idea is madmom's: its processors
declare their own command-line options.

Messages name an option as ``name (--flag)``: right for library users, who passed ``name``,
and for command-line users, who typed ``--flag``.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo(Config):
...     size: int = opt(3, "--size", "How many.", minimum=1)
>>> Demo(size=0)
Traceback (most recent call last):
...
genre_cli.errors.UsageError: size (--size) must be >= 1, got 0
>>> Demo.from_params({"size": 2, "colour": "red"})
Traceback (most recent call last):
...
genre_cli.errors.UsageError: Demo: unknown option(s) colour; valid: size
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from genre_cli.errors import OptionTypeError, UsageError

_MISSING = object()


@dataclasses.dataclass(frozen=True)
class Option:
    """One option: what it is, what values it takes, how it appears on the command line.

    Attributes
    ----------
    name : str
        Field / parameter name (``hop_length``).
    type : type
        ``int``, ``float``, ``bool``, ``str``, ``tuple`` (a pair of ints), ``dict`` or ``object``
        (not checked).
    default : any
        Value when not given.
    help : str
        One line for ``--help``.
    flag : str or None
        Command-line spelling (``--hop-length``); ``None``: not on the command line.
    aliases : tuple of str
        Older spellings, still accepted on the command line.
    choices : tuple or None
        The only allowed values.
    minimum, maximum : float or None
        Inclusive bounds; ``above``: exclusive lower bound.
    nullable : bool
        ``None`` is allowed (and means "automatic" / "not set").
    stored : bool
        Always part of :meth:`Config.to_params` (and so of fingerprints). ``False`` for options
        added later: stored only when set to something other than the default, so adding the
        option does not change the fingerprint of anything made before it existed.
    cli_type : type or None
        Type of the command-line value when it differs from ``type`` (``str`` for ``30x30``).
    parse : callable or None
        Command-line value -> field value (``"30x30"`` -> ``(30, 30)``; ``--power`` -> ``db=False``).
    cli_default : any
        Command-line default when it differs from ``default`` (used with ``parse``).
    show : callable or None
        Field value -> command-line text for hints (``(30, 30)`` -> ``"30x30"``).
    metavar : str or None
        Placeholder in ``--help``.
    deprecated : tuple of str
        Former spellings still accepted on the command line (hidden from ``--help``; using
        one prints a notice naming the new one).
    """

    name: str = ""
    type: Any = object
    default: Any = None
    help: str = ""
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    nullable: bool = False
    stored: bool = True
    cli_type: Any = None
    parse: Callable[[Any], Any] | None = None
    cli_default: Any = _MISSING
    show: Callable[[Any], str] | None = None
    metavar: str | None = None
    deprecated: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``name (--flag)``: how messages name the option."""
        return f"{self.name} ({self.flag})" if self.flag else self.name

    def hint(self, value: Any) -> str:
        """The command-line form that sets ``value`` (``--mel 128``, ``--stft``, ``--mfcc-frames 30x30``)."""
        if self.type is bool:
            return self.flag or self.name
        text = self.show(value) if self.show else str(value)
        return f"{self.flag or self.name} {text}"

    def check(self, value: Any) -> Any:
        """``value`` checked against the declaration and normalised (``list`` -> ``tuple``,
        ``int`` -> ``float``); :class:`UsageError` naming :attr:`label` otherwise."""
        if value is None:
            if self.nullable or self.default is None:
                return None
            raise UsageError(f"{self.label} must not be empty")
        value = self._typed(value)
        if self.choices is not None and value not in self.choices:
            raise UsageError(f"unknown {self.label} {value!r}; valid: {', '.join(map(str, self.choices))}")
        if self.type in (int, float):
            if self.minimum is not None and value < self.minimum:
                raise UsageError(f"{self.label} must be >= {self.minimum:g}, got {value!r}")
            if self.maximum is not None and value > self.maximum:
                raise UsageError(f"{self.label} must be <= {self.maximum:g}, got {value!r}")
            if self.above is not None and not value > self.above:
                raise UsageError(f"{self.label} must be > {self.above:g}, got {value!r}")
        return value

    def _typed(self, value: Any) -> Any:
        t = self.type
        if t is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise OptionTypeError(f"{self.label} must be an integer, got {value!r}")
        elif t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise OptionTypeError(f"{self.label} must be a finite number, got {value!r}")
            value = float(value)
        elif t is bool:
            if not isinstance(value, bool):
                raise OptionTypeError(f"{self.label} must be true or false, got {value!r}")
        elif t is str:
            if not isinstance(value, str):
                raise OptionTypeError(f"{self.label} must be a string, got {value!r}")
        elif t is tuple:
            if isinstance(value, list):
                value = tuple(value)
            if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
                raise OptionTypeError(f"{self.label} must be a pair of integers, got {value!r}")
        elif t is dict:
            if not isinstance(value, dict):
                raise OptionTypeError(f"{self.label} must be a mapping, got {value!r}")
        return value


def opt(default: Any, flag: str | None = None, help: str = "", **kw: Any) -> Any:
    """A dataclass field carrying its :class:`Option` (the name comes from the field)."""
    option = Option(default=default, flag=flag, help=help, **kw)
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"option": option})
    return dataclasses.field(default=default, metadata={"option": option})


class Config:
    """Base of the option-declaring dataclasses (``@dataclass(frozen=True)`` subclasses).

    Fields made with :func:`opt` are checked at construction; :meth:`check` adds the
    cross-field rules of a subclass. :meth:`from_params` rejects unknown keys.
    """

    #: Extra command-line options that are not fields (``--random K`` of segment); see :meth:`from_cli`.
    CLI_ONLY: ClassVar[tuple[Option, ...]] = ()

    def __post_init__(self) -> None:
        for o in self.options():
            object.__setattr__(self, o.name, o.check(getattr(self, o.name)))
        self.check()

    def check(self) -> None:
        """Cross-field rules (raise :class:`UsageError`); the default has none."""

    @classmethod
    def options(cls) -> tuple[Option, ...]:
        """The declared options, in field order."""
        return _options(cls)

    @classmethod
    def option(cls, name: str) -> Option:
        for o in cls.options():
            if o.name == name:
                return o
        raise KeyError(name)

    def to_params(self) -> dict[str, Any]:
        """JSON-safe dict of the options (tuples as lists), sorted; options declared with
        ``stored=False`` only when they differ from their default."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            o = f.metadata.get("option")
            if o is not None and not o.stored and value == o.default:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return dict(sorted(out.items()))

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Any:
        """Build from :meth:`to_params` output; missing keys take defaults, unknown keys are refused."""
        if not isinstance(params, dict):
            raise UsageError(f"{cls.__name__}: expected a mapping of options, got {type(params).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise UsageError(f"{cls.__name__}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(names)}")
        return cls(**params)

    @classmethod
    def cli_options(cls) -> tuple[Option, ...]:
        """The options a command exposes: fields with a flag, then :attr:`CLI_ONLY`."""
        return tuple(o for o in cls.options() if o.flag) + cls.CLI_ONLY

    @classmethod
    def from_cli(cls, values: dict[str, Any], **fixed: Any) -> Any:
        """Build from command-line values (by option name; ``parse`` applied); ``fixed`` adds
        values that do not come from flags."""
        kw = {}
        for o in cls.cli_options():
            if o.name in values:
                kw[o.name] = o.parse(values[o.name]) if o.parse else values[o.name]
        return cls(**(kw | fixed))

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)


@functools.cache
def _options(cls: type) -> tuple[Option, ...]:
    out = []
    for f in dataclasses.fields(cls):
        o = f.metadata.get("option")
        if o is not None:
            out.append(dataclasses.replace(o, name=f.name))
    return tuple(out)


# ----------------------------------------------------------------------------- command line


def _param_name(group: str, name: str) -> str:
    return f"{group}__{name}"


def command_options(
    groups: dict[str, Sequence[Option]],
    *,
    defaults: dict[str, dict[str, Any]] | None = None,
    help_texts: dict[str, dict[str, str]] | None = None,
    notice: Callable[[str], None] | None = None,
    after: str | None = None,
):
    """Decorator adding each group's options to a typer command's parameters.

    The command receives one keyword argument per group: ``{option name: value}`` of the
    values given on the command line (options left at their default are included).
    ``defaults[group][name]`` replaces an option's default for this command (shown in
    ``--help``); ``help_texts[group][name]`` replaces its help. Options of two groups
    with the same flag are one command-line option feeding both groups. A deprecated spelling
    (:attr:`Option.deprecated`) is accepted, hidden, and reported with ``notice``. The options
    come after the command's arguments, or after its parameter ``after``.
    """
    import typer

    defaults = defaults or {}
    help_texts = help_texts or {}

    def deco(fn):
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name not in groups]
        seen: dict[str, str] = {}  # flag -> parameter name
        routes: dict[str, list[tuple[str, str]]] = {}  # parameter name -> [(group, option name)]
        old: dict[str, tuple[str, str, str]] = {}  # hidden parameter -> (parameter it stands for, old flag, new flag)
        extra: list[inspect.Parameter] = []
        for group, options in groups.items():
            for o in options:
                if o.flag in seen:
                    routes[seen[o.flag]].append((group, o.name))
                    continue
                pname = _param_name(group, o.name)
                seen[o.flag] = pname
                routes[pname] = [(group, o.name)]
                default = defaults.get(group, {}).get(o.name, o.cli_default if o.cli_default is not _MISSING else o.default)
                extra.append(
                    inspect.Parameter(
                        pname,
                        inspect.Parameter.KEYWORD_ONLY,
                        default=default,
                        annotation=_typer_annotation(typer, o, default, help_texts.get(group, {}).get(o.name)),
                    )
                )
                for i, flag in enumerate(o.deprecated):
                    hidden = f"{pname}__old{i}"
                    old[hidden] = (pname, flag, o.flag)
                    extra.append(
                        inspect.Parameter(
                            hidden,
                            inspect.Parameter.KEYWORD_ONLY,
                            default=None,
                            annotation=_typer_annotation(typer, o, None, None, flag=flag, hidden=True),
                        )
                    )
        names = [p.name for p in own]
        if after is not None:
            cut = names.index(after) + 1
        else:
            cut = max((i + 1 for i, p in enumerate(own) if p.default is inspect.Parameter.empty or _is_argument(p)), default=0)
        positional, rest = own[:cut], own[cut:]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in (*positional, *extra, *rest)]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for hidden, (pname, flag, new) in old.items():
                value = kwargs.pop(hidden)
                if value is not None:
                    if notice is not None:
                        notice(f"{flag} is now {new}; the old spelling will go away")
                    kwargs[pname] = value
            values: dict[str, dict[str, Any]] = {g: {} for g in groups}
            for pname, targets in routes.items():
                value = kwargs.pop(pname)
                for group, name in targets:
                    values[group][name] = value
            return fn(*args, **kwargs, **values)

        wrapper.__signature__ = sig.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return deco


def _is_argument(p: inspect.Parameter) -> bool:
    import typer

    meta = getattr(p.annotation, "__metadata__", ())
    return any(isinstance(m, typer.models.ArgumentInfo) for m in meta)


def _typer_annotation(typer, o: Option, default: Any, help_text: str | None, *, flag: str | None = None, hidden: bool = False):
    from typing import Annotated, Optional

    t = o.cli_type or o.type
    if t is tuple or t is object:
        t = str
    if o.nullable or default is None:
        t = Optional[t]
    help_text = (help_text or o.help).replace("[", "\\[")  # rich markup would eat "[default: ...]"
    if o.choices and o.type is str:
        help_text = help_text or " | ".join(map(str, o.choices))
    kw: dict[str, Any] = {"help": help_text, "hidden": hidden}
    if o.metavar:
        kw["metavar"] = o.metavar
    if o.type in (int, float) and o.cli_type is None:
        if o.minimum is not None:
            kw["min"] = o.minimum
        if o.maximum is not None:
            kw["max"] = o.maximum
    if default is None or default == () or default == {}:
        kw["show_default"] = False
    return Annotated[t, typer.Option(*((flag,) if flag else (o.flag, *o.aliases)), **kw)]


def hints(options: Iterable[Option], values: dict[str, Any]) -> str:
    """``--mel 128 --deltas``: the command-line form of ``values`` (options in declaration order)."""
    return " ".join(o.hint(values[o.name]) for o in options if o.name in values)
