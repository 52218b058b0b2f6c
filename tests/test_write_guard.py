"""The guard of tests/conftest.py: a test that writes outside its temporary directories fails the session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

STRAY = """
from pathlib import Path

def test_writes_into_the_checkout():
    (Path(__file__).resolve().parents[1] / "stray.txt").write_text("oops")

def test_writes_into_its_tmp_path(tmp_path):
    (tmp_path / "fine.txt").write_text("ok")
"""

RELATIVE = """
from pathlib import Path

def test_writes_a_relative_path():
    Path("genre-work").mkdir()
    Path("genre-work/out.h5").write_bytes(b"x")
"""

CLEAN = """
import os
from pathlib import Path

from conftest import genre

def test_a_command_without_workdir_writes_into_the_test_workdir(tmp_path):
    r = genre("fetch", "demo")
    assert r.exit_code == 0, r.stderr
    out = Path(r.stdout.strip()).resolve()
    assert out.is_relative_to(Path(os.environ["GENRE_WORKDIR"]).resolve())
    assert out.is_relative_to(tmp_path.parents[1].resolve())  # inside pytest's temporary directory
"""


def _project(tmp_path: Path, name: str, test: str) -> Path:
    """A checkout-like folder: pyproject.toml, tests/conftest.py (this suite's) and one test module."""
    proj = tmp_path / "proj"
    (proj / "tests").mkdir(parents=True)
    (proj / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    shutil.copy(HERE / "conftest.py", proj / "tests" / "conftest.py")
    (proj / "tests" / f"test_{name}.py").write_text(test)
    return proj


def _pytest(tmp_path: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("GENRE_WORKDIR", None)
    env.pop("GENRE_DATA", None)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "basetemp"), *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_a_test_writing_into_the_checkout_fails_the_session_and_is_named(tmp_path):
    proj = _project(tmp_path, "stray", STRAY)
    r = _pytest(tmp_path, cwd=proj)
    assert "2 passed" in r.stdout  # the tests themselves pass ...
    assert r.returncode == 1, r.stdout[-3000:]  # ... the session does not
    report = r.stdout[r.stdout.index("tests wrote outside their temporary directories") :]
    assert "tests/test_stray.py::test_writes_into_the_checkout" in report
    assert f"{proj / 'stray.txt'} (new)" in report
    assert "test_writes_into_its_tmp_path" not in report


def test_a_relative_write_into_the_starting_directory_is_caught(tmp_path):
    proj = _project(tmp_path, "relative", RELATIVE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = _pytest(tmp_path, proj / "tests", "--rootdir", proj, cwd=elsewhere)
    assert r.returncode == 1, r.stdout[-3000:]
    assert f"{elsewhere / 'genre-work' / 'out.h5'} (new)" in r.stdout
    assert "test_relative.py::test_writes_a_relative_path" in r.stdout


def test_commands_without_workdir_stay_in_the_temporary_directory(tmp_path):
    proj = _project(tmp_path, "clean", CLEAN)
    r = _pytest(tmp_path, cwd=proj)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "1 passed" in r.stdout and "tests wrote outside" not in r.stdout and not (proj / "genre-work").exists()
