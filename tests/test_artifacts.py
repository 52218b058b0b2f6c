"""The artifact layer: metadata, fingerprints, atomic writes, locks, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from genre_cli import artifacts
from genre_cli.errors import ArtifactError, GenreError, LockError, MissingInputError
from genre_cli.stage import execute


def _write(path: Path, params=None, stage="segment"):
    with artifacts.write_artifact(path, stage=stage, params=params or {"b": 1, "a": 2}, upstream={"index": ("f" * 64, "idx.h5")}) as f:
        f.create_dataset("x", data=np.arange(3))
    return path


def test_metadata_is_complete_and_sorted(tmp_path):
    p = _write(tmp_path / "a.h5")
    meta = artifacts.read_meta(p)
    assert meta.stage == "segment" and meta.complete and meta.schema_version == artifacts.SCHEMAS["segment"]
    with h5py.File(p) as f:
        assert f.attrs["params"] == '{"a":2,"b":1}'
        versions = json.loads(f.attrs["versions"])
    assert {"python", "numpy", "h5py"} <= set(versions)
    assert meta.upstream == {"index": {"fingerprint": "f" * 64, "path": "idx.h5"}}
    assert meta.fingerprint == artifacts.fingerprint("segment", {"a": 2, "b": 1}, {"index": "f" * 64})
    assert meta.created.endswith("+00:00")


def test_fingerprint_depends_on_params_and_upstream_not_order():
    fp = artifacts.fingerprint("train", {"a": 1, "b": 2}, {"x": "1"})
    assert fp == artifacts.fingerprint("train", {"b": 2, "a": 1}, {"x": "1"})
    assert fp != artifacts.fingerprint("train", {"a": 1, "b": 3}, {"x": "1"})
    assert fp != artifacts.fingerprint("train", {"a": 1, "b": 2}, {"x": "2"})
    assert fp != artifacts.fingerprint("evaluate", {"a": 1, "b": 2}, {"x": "1"})


def test_exception_during_write_leaves_previous_file_and_no_temp(tmp_path):
    p = _write(tmp_path / "a.h5", params={"v": 1})
    before = artifacts.read_meta(p).fingerprint
    with pytest.raises(RuntimeError, match="boom"):
        with artifacts.write_artifact(p, stage="segment", params={"v": 2}) as f:
            f.create_dataset("half", data=np.zeros(10))
            raise RuntimeError("boom")
    assert artifacts.read_meta(p).fingerprint == before  # old complete artifact untouched
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.h5"]  # no temp, no lock left


def test_a_swallowed_ctrl_c_still_stops_the_commit(tmp_path):
    """SIGINT whose KeyboardInterrupt is lost (raised inside a callback that ignores exceptions,
    as weakref callbacks and __del__ do) must not let the stage commit a finished-looking file."""
    import signal

    from genre_cli import interrupts

    p = _write(tmp_path / "a.h5", params={"v": 1})
    before = artifacts.read_meta(p).fingerprint
    with interrupts.catching():
        with pytest.raises(KeyboardInterrupt):
            with artifacts.write_artifact(p, stage="segment", params={"v": 2}) as f:
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                    for _ in range(1000):  # the handler runs at the next bytecode boundary, in here
                        pass
                except KeyboardInterrupt:
                    pass  # swallowed, as "Exception ignored in ..." does
                f.create_dataset("rest", data=np.zeros(10))
    assert artifacts.read_meta(p).fingerprint == before  # the previous artifact is kept
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.h5"]
    with artifacts.write_artifact(p, stage="segment", params={"v": 3}):  # outside catching(): no stale flag
        pass
    assert artifacts.read_meta(p).params == {"v": 3}


def test_exception_during_first_write_leaves_nothing(tmp_path):
    p = tmp_path / "new.h5"
    with pytest.raises(KeyboardInterrupt):
        with artifacts.write_artifact(p, stage="segment", params={}) as f:
            f.create_dataset("half", data=np.zeros(10))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_stage_execute_skips_when_up_to_date_and_force_reruns(tmp_path):
    calls = []

    def build(f):
        calls.append(1)
        f.create_dataset("x", data=[1])

    kw = dict(stage="segment", params={"s": 3}, upstream={}, build=build, out=None, workdir=tmp_path, dataset="d", slug="seg")
    r1 = execute(**kw)
    r2 = execute(**kw)
    r3 = execute(**kw, force=True)
    r4 = execute(**{**kw, "params": {"s": 4}}, dry_run=True)
    assert [r1.status, r2.status, r3.status, r4.status] == ["ran", "skipped", "ran", "would run"]
    assert len(calls) == 2 and r1.path == r2.path and r1.path.parent == tmp_path / "d"
    assert not r4.path.exists() and r4.path != r1.path


def test_open_incomplete_other_stage_newer_schema(tmp_path):
    p = _write(tmp_path / "a.h5")
    with pytest.raises(ArtifactError, match="expected featurize"):
        with artifacts.open_artifact(p, "featurize"):
            pass
    with h5py.File(p, "a") as f:
        f.attrs["complete"] = False
    with pytest.raises(ArtifactError, match="incomplete"):
        with artifacts.open_artifact(p, "segment"):
            pass
    with h5py.File(p, "a") as f:
        f.attrs["complete"] = True
        f.attrs["schema_version"] = 99
    with pytest.raises(ArtifactError, match="schema version 99"):
        with artifacts.open_artifact(p, "segment"):
            pass
    assert not artifacts.is_up_to_date(p, artifacts.read_meta(p).fingerprint)


def test_missing_input_names_the_command(tmp_path):
    with pytest.raises(MissingInputError) as exc:
        with artifacts.open_artifact(tmp_path / "nope.h5", "segment"):
            pass
    assert "genre segment" in str(exc.value)


def test_not_hdf5_and_not_genre(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("hello")
    with pytest.raises(ArtifactError, match="not a readable HDF5"):
        artifacts.read_meta(bad)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = 1
    with pytest.raises(ArtifactError, match="not a genre artifact"):
        artifacts.read_meta(plain)


def test_lock_held_by_live_process_is_refused_stale_is_taken(tmp_path):
    p = tmp_path / "a.h5"
    lock = tmp_path / "a.h5.lock"
    lock.write_text(str(os.getppid()))  # a live process that is not us
    with pytest.raises(LockError, match="another process"):
        _write(p)
    lock.write_text("999999999")  # dead pid
    _write(p)
    assert artifacts.read_meta(p).complete and not lock.exists()


def test_oserror_during_write_names_path_and_errno(tmp_path, monkeypatch):
    p = tmp_path / "a.h5"

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifacts.os, "replace", fail)
    with pytest.raises(GenreError, match=r"a\.h5.*errno 28"):
        _write(p)
    assert not p.exists() and list(tmp_path.iterdir()) == []


def test_tables_round_trip(tmp_path):
    p = tmp_path / "t.h5"
    with h5py.File(p, "w") as f:
        artifacts.write_table(f, "t", {"s": np.array(["a", "ü b"], dtype=object), "n": np.array([1, 2])})
        artifacts.write_table(f, "empty", {"s": np.zeros(0, dtype=object), "n": np.zeros(0, dtype=np.int64)})
    with h5py.File(p) as f:
        t = artifacts.read_table(f, "t")
        e = artifacts.read_table(f, "empty")
        with pytest.raises(ArtifactError, match="missing table"):
            artifacts.read_table(f, "nope")
    assert list(t["s"]) == ["a", "ü b"] and list(t["n"]) == [1, 2] and len(e["s"]) == 0


def test_complete_must_be_a_real_boolean(tmp_path):
    p = _write(tmp_path / "a.h5")
    with h5py.File(p, "a") as f:
        f.attrs["complete"] = "no"
    assert not artifacts.read_meta(p).complete
    with pytest.raises(ArtifactError, match="incomplete"):
        with artifacts.open_artifact(p, "segment"):
            pass
