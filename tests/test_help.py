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
    assert COMMANDS == ["evaluate", "featurize", "fetch", "info", "models", "predict", "run", "segment", "serve", "train"]


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


def test_train_help_says_defaults_depend_on_the_model():
    text = " ".join(_help("train").split())
    assert "paper" in text and "model" in text
    doc = GROUP.commands["train"].help
    assert "the model's paper" in doc and "ours" in doc


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
