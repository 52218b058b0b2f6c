"""Interruption and concurrency with real subprocesses: SIGKILL, SIGINT, two writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genre_cli import artifacts
from genre_cli.errors import MissingInputError

ROOT = Path(__file__).resolve().parents[1]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONUNBUFFERED": "1"}


def genre_process(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "genre_cli", *map(str, args)], capture_output=True, text=True, env=_env(), timeout=300, **kw
    )


def start(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "genre_cli", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )


@pytest.fixture(scope="module")
def segments(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("kill")
    idx, seg = d / "idx.h5", d / "seg.h5"
    assert genre_process("fetch", "demo", "-o", idx).returncode == 0
    r = genre_process("segment", idx, "--seconds", "1", "--hop", "0.25", "-o", seg)  # 161 tracks x 27 windows: a few seconds to featurize
    assert r.returncode == 0, r.stderr
    return seg


def _wait_for(pred, timeout=120.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _temps(out: Path):
    return list(out.parent.glob(f".{out.name}.tmp-*"))


def test_sigkill_mid_write_leaves_previous_artifact_or_none(segments, tmp_path):
    out = tmp_path / "feat.h5"
    proc = start("featurize", segments, "--mel", "128", "--stft", "--jobs", "1", "-o", out)
    assert _wait_for(lambda: _temps(out) or proc.poll() is not None)
    time.sleep(0.3)
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
    proc = start("featurize", segments, "--mel", "128", "--stft", "--jobs", "1", "-o", out)
    assert _wait_for(lambda: _temps(out) or proc.poll() is not None)
    time.sleep(0.3)
    proc.kill()
    proc.wait(timeout=30)
    meta = artifacts.read_meta(out)
    assert meta.complete and meta.fingerprint == before


def test_sigint_stops_cleanly_and_removes_temp_files(segments, tmp_path):
    out = tmp_path / "feat.h5"
    proc = start("featurize", segments, "--mel", "128", "--stft", "--jobs", "2", "-o", out)
    assert _wait_for(lambda: _temps(out) or proc.poll() is not None)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists() and not _temps(out) and not out.with_name(out.name + ".lock").exists()


def test_two_writers_of_one_output_are_refused_not_interleaved(segments, tmp_path):
    out = tmp_path / "feat.h5"
    lock = out.with_name(out.name + ".lock")
    first = start("featurize", segments, "--mel", "128", "--stft", "--jobs", "1", "-o", out)
    assert _wait_for(lambda: lock.exists() or first.poll() is not None)
    second = genre_process("featurize", segments, "--mel", "128", "--stft", "--jobs", "1", "-o", out)
    assert second.returncode == 1
    assert f"pid {first.pid}" in second.stderr and "another process" in second.stderr
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert artifacts.read_meta(out).complete
