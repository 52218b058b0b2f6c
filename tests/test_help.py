"""`--help` of every command: every option described, readable usage lines, real examples."""

from __future__ import annotations

import re

import pytest
import typer

from genre_cli.cli import app

from conftest import genre

GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)


def _help(*argv: str) -> str:
    r = genre(*argv, "--help")
    assert r.exit_code == 0, r.stderr
    return r.stdout


def _visible_params(name: str):
    cmd = GROUP.commands[name]
    ctx = cmd.context_class(cmd, info_name=name)
    return [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False)]


def test_every_command_is_checked():
    assert COMMANDS == ["cv", "evaluate", "featurize", "fetch", "info", "models", "predict", "run", "segment", "serve", "train"]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_and_argument_has_help_text(name):
    missing = [p.name for p in _visible_params(name) if not (getattr(p, "help", None) or "").strip()]
    assert missing == [], f"genre {name}: no help text for {missing}"


@pytest.mark.parametrize("argv", [[], *([c] for c in COMMANDS)], ids=["genre", *COMMANDS])
def test_help_reads_cleanly(argv):
    text = _help(*argv)
    flat = " ".join(text.split())  # rich wraps lines inside the option table
    assert "<bool>" not in text  # a flag takes no value
    assert not re.search(r"\w \.(\s|$)", flat), re.findall(r".{30}\w \.(?:\s|$)", flat)  # help text eaten up to a stray " ."
    usage = next(line for line in text.splitlines() if "Usage:" in line).split()
    assert usage[:2] == ["Usage:", "genre"], usage
    for token in usage[2 + len(argv) :]:  # [OPTIONS], then arguments by metavar: INDEX, [FEATURES], PATHS...
        assert re.fullmatch(r"\[?[A-Z][A-Z_]*(\.\.\.)?\]?(\.\.\.)?", token), usage


@pytest.mark.parametrize("name", COMMANDS)
def test_help_ends_with_real_examples(name):
    doc = GROUP.commands[name].help or ""
    paragraphs = [p.strip() for p in doc.strip().split("\n\n") if p.strip()]
    last = paragraphs[-1]
    assert last.startswith("Example"), f"genre {name}: the help does not end with examples:\n{last}"
    assert f"genre {name}" in last or (name == "run" and "genre run" in last)
    assert "Example" in _help(name)


def test_usage_lines_name_arguments_by_metavar():
    assert "Usage: genre segment [OPTIONS] INDEX" in _help("segment")
    assert "Usage: genre predict [OPTIONS] MODEL PATHS..." in _help("predict")
    assert "Usage: genre evaluate [OPTIONS] MODEL... FEATURES" in _help("evaluate") or "PATHS..." in _help("evaluate")
    assert "Usage: genre train [OPTIONS] [FEATURES]" in _help("train")


def test_train_help_names_the_real_defaults_and_their_order():
    """The help says what training does: the recipe's values (written out from recipe.py, e.g.
    cnn6's batch 32, 30 epochs, patience 0) unless --paper; never the paper's values as the default."""
    from genre_cli.training import recipe
    from genre_cli.training.config import TrainConfig, resolve_hparams

    doc = " ".join(GROUP.commands["train"].help.split())
    assert recipe.describe(recipe.RECIPE) in doc and recipe.describe(recipe.PLAIN) in doc
    assert "flag > model's recipe change > recipe" in doc and "with --paper, flag > paper > plain" in doc
    assert "ours" not in doc and "patience 10)" not in doc and "15 epochs" not in doc
    # what the help calls the default is what cnn6 trains with, without --paper
    hp, src = resolve_hparams(TrainConfig(model="cnn6"), {"kind": "torch", "train": {"epochs": 15, "batch_size": 100}})
    assert (hp["epochs"], hp["batch_size"], hp["patience"], src["epochs"]) == (30, 32, 0, "recipe")
    text = " ".join(_help("train").split())
    assert "flag > model's recipe change > recipe" in " ".join(text.replace("│", " ").split())
    helps = {o.name: o.help for o in TrainConfig.cli_options()}
    for key in ("epochs", "batch_size", "patience", "select", "ema", "mixup"):
        shown = str(recipe.RECIPE[key]) if not isinstance(recipe.RECIPE[key], float) else f"{recipe.RECIPE[key]:g}"
        assert f"[recipe {shown}" in helps[key], (key, helps[key])
    assert f"else {recipe.PLAIN['patience']}]" in helps["patience"] and f"--paper: {recipe.PLAIN['select']}]" in helps["select"]


def test_evaluate_help_does_not_send_users_to_python_modules():
    for name in COMMANDS:
        assert "genre_cli." not in (GROUP.commands[name].help or ""), name


def _examples(name: str) -> list[list[str]]:
    """The example command lines at the end of a command's help, as argument lists after ``genre NAME``."""
    import shlex

    last = (GROUP.commands[name].help or "").strip().split("\n\n")[-1]
    out = []
    for line in last.splitlines()[1:]:
        words = shlex.split(line.strip())
        start = words.index("genre")
        words = words[start + 1 :]
        for stop in ("|", ">"):
            words = words[: words.index(stop)] if stop in words else words
        assert words[0] == name, line
        out.append(words[1:])
    return out


@pytest.mark.parametrize("name", COMMANDS)
def test_help_examples_are_valid_command_lines(name):
    cmd = GROUP.commands[name]
    examples = _examples(name)
    assert 1 <= len(examples) <= 2
    for args in examples:
        cmd.make_context(name, list(args))  # parses every option and argument; a typo or a removed flag raises
