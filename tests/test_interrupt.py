"""Interruption and concurrency with real subprocesses: SIGKILL, SIGINT, two writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genre_cli import artifacts, testhooks
from genre_cli.errors import MissingInputError

ROOT = Path(__file__).resolve().parents[1]


def _env():
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    }


def genre_process(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "genre_cli", *map(str, args)], capture_output=True, text=True, env=_env(), timeout=300, **kw
    )


def start(*args, pause: str | None = None, ready: Path | None = None):
    """Start ``genre ARGS``; with ``pause``, the stage stops at that point (genre_cli.testhooks)
    and creates ``ready`` once it is there."""
    env = _env()
    if pause:
        env |= {testhooks.ENV: pause, testhooks.READY_ENV: str(ready)}
    return subprocess.Popen(
        [sys.executable, "-m", "genre_cli", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def paused(proc, ready: Path, timeout: float = 240.0) -> None:
    """Wait until ``proc`` is paused at its test point (fails if it exits first)."""
    t0 = time.time()
    while not ready.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"exited with {proc.returncode} before reaching its pause point:\n{err[-2000:]}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail("never reached its pause point")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def segments(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("kill")
    idx, seg = d / "idx.h5", d / "seg.h5"
    assert genre_process("fetch", "demo", "-o", idx).returncode == 0
    r = genre_process("segment", idx, "--seconds", "1", "--hop", "0.5", "-o", seg)  # 161 tracks x 14 windows
    assert r.returncode == 0, r.stderr
    return seg


@pytest.fixture(scope="module")
def few_segments(segments) -> Path:
    """One 1 s window per demo track (161 segments): enough to train a model quickly."""
    seg = segments.with_name("few.h5")
    r = genre_process("segment", segments.with_name("idx.h5"), "--seconds", "1", "--first", "1", "-o", seg)
    assert r.returncode == 0, r.stderr
    return seg


def _temps(out: Path):
    return list(out.parent.glob(f".{out.name}.tmp-*"))


def test_sigkill_mid_write_leaves_previous_artifact_or_none(segments, tmp_path):
    out, ready = tmp_path / "feat.h5", tmp_path / "ready"
    proc = start("featurize", segments, "--mel", "128", "--jobs", "1", "-o", out, pause="featurize:chunk", ready=ready)
    paused(proc, ready)
    assert _temps(out)  # killed mid-write: the first chunk is in the temp file
    proc.kill()
    proc.wait(timeout=30)
    assert not out.exists()  # never a truncated file under the real name
    with pytest.raises(MissingInputError):
        with artifacts.open_artifact(out, "featurize"):
            pass
    # the next run takes over the dead writer's lock, removes its temp file and completes
    r = genre_process("featurize", segments, "--mel", "16", "--jobs", "1", "-o", out)
    assert r.returncode == 0, r.stderr
    assert artifacts.read_meta(out).complete and not _temps(out) and not out.with_name(out.name + ".lock").exists()
    before = artifacts.read_meta(out).fingerprint
    # killed while replacing it: the previous complete artifact survives untouched
    ready.unlink()
    proc = start("featurize", segments, "--mel", "128", "--jobs", "1", "-o", out, pause="featurize:chunk", ready=ready)
    paused(proc, ready)
    assert _temps(out)
    proc.kill()
    proc.wait(timeout=30)
    meta = artifacts.read_meta(out)
    assert meta.complete and meta.fingerprint == before


def test_sigint_mid_featurize_stops_cleanly_and_removes_temp_files(segments, tmp_path):
    out, ready = tmp_path / "feat.h5", tmp_path / "ready"
    proc = start("featurize", segments, "--mel", "128", "--jobs", "2", "-o", out, pause="featurize:chunk", ready=ready)
    paused(proc, ready)
    assert _temps(out)  # the signal lands mid-stage: a chunk is written, the others are not
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: nothing half-written was kept; rerun the command to start over" in err
    assert "--resume" not in err and "Traceback" not in err and "✓ featurize" not in err
    assert not out.exists() and not _temps(out) and not out.with_name(out.name + ".lock").exists()


def test_sigint_mid_train_keeps_the_checkpoint_and_resume_continues(few_segments, tmp_path):
    feat, model, ready = tmp_path / "feat.h5", tmp_path / "model.h5", tmp_path / "ready"
    r = genre_process("featurize", few_segments, "--mel", "16", "--jobs", "1", "-o", feat)
    assert r.returncode == 0, r.stderr
    args = ("train", feat, "--model", "cnn6", "--epochs", "3", "--batch-size", "256", "--device", "cpu", "-o", model)
    proc = start(*args, pause="train:epoch#1", ready=ready)
    paused(proc, ready)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    ckpt = model.with_name(model.name + ".ckpt.h5")
    assert proc.returncode == 130, err[-2000:]
    assert f"interrupted: no model was written; epoch 1 is kept in {ckpt}: rerun the same command with --resume" in err
    assert not model.exists() and ckpt.exists() and "Traceback" not in err
    r = genre_process(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert "resumed after epoch 1" in r.stderr and model.exists() and not ckpt.exists()


def test_sigint_mid_predict_says_how_many_files_were_written(few_segments, tmp_path):
    from genre_cli.datasets.demo import demo_root

    feat, model, ready = tmp_path / "feat.h5", tmp_path / "model.h5", tmp_path / "ready"
    assert genre_process("featurize", few_segments, "--mel", "16", "--jobs", "1", "-o", feat).returncode == 0
    assert genre_process("train", feat, "--model", "cnn6", "--epochs", "1", "--device", "cpu", "-o", model).returncode == 0
    proc = start("predict", model, demo_root() / "funk", "--jobs", "1", pause="predict:file#2", ready=ready)
    paused(proc, ready)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert len(out.splitlines()) == 2  # the two lines written before the signal, flushed
    assert "interrupted: 2 file(s) were classified and their lines written to stdout; the files after them were not read" in err
    assert "--resume" not in err and "Traceback" not in err


def test_two_writers_of_one_output_are_refused_not_interleaved(segments, tmp_path):
    out, ready = tmp_path / "feat.h5", tmp_path / "ready"
    first = start("featurize", segments, "--mel", "128", "--jobs", "1", "-o", out, pause="featurize:chunk", ready=ready)
    paused(first, ready)  # the first writer holds the lock, mid-write
    assert out.with_name(out.name + ".lock").exists()
    second = genre_process("featurize", segments, "--mel", "128", "--jobs", "1", "-o", out)
    assert second.returncode == 1
    assert f"pid {first.pid}" in second.stderr and "another process" in second.stderr
    ready.unlink()  # let the first writer go on
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert artifacts.read_meta(out).complete


def test_pause_hook_is_inert_unless_its_point_is_named(monkeypatch, tmp_path):
    def no_wait(_):
        raise AssertionError("pause_point waited")

    monkeypatch.setattr(testhooks.time, "sleep", no_wait)
    monkeypatch.setattr(testhooks, "_hits", {})
    monkeypatch.delenv(testhooks.ENV, raising=False)
    testhooks.pause_point("featurize:chunk")  # unset: returns at once
    monkeypatch.setenv(testhooks.ENV, "segment:track")
    testhooks.pause_point("featurize:chunk")  # another point: returns at once
    monkeypatch.setenv(testhooks.ENV, "featurize:chunk#2")
    testhooks.pause_point("featurize:chunk")  # its first hit: not yet
    monkeypatch.setenv(testhooks.READY_ENV, str(tmp_path / "ready"))
    with pytest.raises(AssertionError, match="waited"):
        testhooks.pause_point("featurize:chunk")  # the second: it announces itself, then waits
    assert (tmp_path / "ready").read_text().startswith("featurize:chunk ")
