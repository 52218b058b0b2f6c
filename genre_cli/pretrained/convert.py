"""Convert the musicnn wheel's TensorFlow checkpoints into our own HDF5 weight files.

``convert(wheel, out_dir)`` checks the wheel's sha256, reads each tagger's tensor bundle
with :mod:`genre_cli.pretrained.tfbundle` (numpy only), maps the TensorFlow variables onto
:class:`~genre_cli.models.musicnn.Musicnn`'s state dict (transposing kernels), checks the
tags against the wheel's ``configuration.py`` and writes one file per variant (see
:mod:`genre_cli.pretrained.weights` for the layout). Without a wheel path it first runs
``pip download --no-deps musicnn==0.1.0`` into a temporary folder (needs network).

``genre fetch model musicnn [--from WHEEL|URL] [-o DIR | --into-package]`` runs
:func:`fetch_model`: get the wheel (a local file, a URL, or ``pip download``), check its sha256,
convert. It writes into the user's data folder (``$GENRE_DATA/models``, default
``~/.cache/genre/data/models``), never into the installed package unless asked
(``--into-package``). The same as a module::

    python -m genre_cli.pretrained.convert [--wheel PATH] [--out DIR] [--variant msd --variant mtt]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from genre_cli.errors import CheckpointError, DownloadError, GenreError, InputError
from genre_cli.pretrained.variants import (
    VARIANTS,
    WHEEL_LICENSE_MEMBER,
    WHEEL_NAME,
    WHEEL_REQUIREMENT,
    WHEEL_SHA256,
    Variant,
    variant,
)

#: Torch module prefix -> (TF layer with kernel/bias, TF BatchNorm layer), in the order TF
#: created the layers (its automatic names count up in that order).
LAYER_MAP: tuple[tuple[str, str | None, str | None], ...] = (
    ("input_bn", None, "batch_normalization"),
    ("timbral.0", "conv2d", "batch_normalization_1"),
    ("timbral.1", "conv2d_1", "batch_normalization_2"),
    ("temporal.0", "conv2d_2", "batch_normalization_3"),
    ("temporal.1", "conv2d_3", "batch_normalization_4"),
    ("temporal.2", "conv2d_4", "batch_normalization_5"),
    ("midend.0", "conv2d_5", "batch_normalization_6"),
    ("midend.1", "conv2d_6", "batch_normalization_7"),
    ("midend.2", "conv2d_7", "batch_normalization_8"),
    ("pool_bn", None, "batch_normalization_9"),
    ("dense", "dense", None),
    ("dense_bn", None, "batch_normalization_10"),
    ("out", "dense_1", None),
)
_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tf_variable_names() -> list[str]:
    """The checkpoint variables a musicnn tagger needs (Adam slots and step counters excluded)."""
    names = []
    for _prefix, layer, bn in LAYER_MAP:
        if layer:
            names += [f"{layer}/kernel", f"{layer}/bias"]
        if bn:
            names += [f"{bn}/{k}" for k in _BN]
    return names


def tf_to_state_dict(tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map TF variables (``conv2d/kernel``, ...) to a :class:`Musicnn` state dict of numpy arrays.

    Kernels: TF ``Conv2D`` ``(kh, kw, in, out)`` -> torch ``(out, in, kh, kw)``; the mid-end's
    ``(7, channels, 1, out)`` -> ``Conv1d`` ``(out, channels, 7)``; dense ``(in, out)`` ->
    ``Linear`` ``(out, in)``. BatchNorm gamma/beta/moving mean/variance -> weight/bias/
    running_mean/running_var (plus ``num_batches_tracked = 0``). Values are copied, never
    altered (float32 stays float32, bit for bit).
    """
    sd: dict[str, np.ndarray] = {}
    for prefix, layer, bn in LAYER_MAP:
        if layer:
            k, b = tf[f"{layer}/kernel"], tf[f"{layer}/bias"]
            if prefix.startswith("midend"):
                w = k[:, :, 0, :].transpose(2, 1, 0)
            elif k.ndim == 4:
                w = k.transpose(3, 2, 0, 1)
            else:
                w = k.T
            name = f"{prefix}.conv" if k.ndim == 4 else prefix
            sd[f"{name}.weight"] = np.ascontiguousarray(w)
            sd[f"{name}.bias"] = np.ascontiguousarray(b)
        if bn:
            name = f"{prefix}.bn" if prefix not in ("input_bn", "pool_bn", "dense_bn") else prefix
            for tf_key, key in _BN.items():
                sd[f"{name}.{key}"] = np.ascontiguousarray(tf[f"{bn}/{tf_key}"])
            sd[f"{name}.num_batches_tracked"] = np.zeros((), dtype=np.int64)
    return sd


def _wheel_labels(zf: zipfile.ZipFile, where: str) -> dict[str, list[str]]:
    """``MTT_LABELS`` and ``MSD_LABELS`` from the wheel's ``musicnn/configuration.py`` (parsed, not run)."""
    try:
        tree = ast.parse(zf.read("musicnn/configuration.py").decode("utf-8"))
    except (KeyError, SyntaxError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{where}: cannot read musicnn/configuration.py ({type(exc).__name__})") from None
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("MTT_LABELS", "MSD_LABELS"):
                out[node.targets[0].id] = list(ast.literal_eval(node.value))
    return out


def read_wheel_variant(zf: zipfile.ZipFile, v: Variant, *, where: str, verify: bool = True) -> dict[str, np.ndarray]:
    """The TF variables of variant ``v`` from an open wheel (see :func:`tf_variable_names`)."""
    from genre_cli.pretrained.tfbundle import data_file_name, parse_index, read_tensors

    try:
        index = zf.read(v.checkpoint + ".index")
    except KeyError:
        raise CheckpointError(f"{where}: no {v.checkpoint}.index in the wheel") from None
    header, _ = parse_index(index, where=f"{where}:{v.checkpoint}.index", verify=False)

    def shard(i: int) -> bytes:
        member = data_file_name(v.checkpoint, i, header.num_shards)
        try:
            return zf.read(member)
        except KeyError:
            raise CheckpointError(f"{where}: no {member} in the wheel") from None

    return read_tensors(index, shard, names=tf_variable_names(), where=f"{where}:{v.checkpoint}", verify=verify)


def download_wheel(dest: str | Path, *, timeout: float = 300.0, index_url: str | None = None) -> Path:
    """``pip download --no-deps musicnn==0.1.0`` into ``dest``; returns the wheel's path.

    pip's own configuration applies (``PIP_INDEX_URL``, ``pip.conf``: a lab's mirror);
    ``index_url`` overrides it.

    Raises
    ------
    DownloadError
        pip failed (no network, no index) or produced no wheel.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        WHEEL_REQUIREMENT,
        "-d",
        str(dest),
        *(["--index-url", index_url] if index_url else []),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DownloadError(f"pip download {WHEEL_REQUIREMENT} failed: {exc}") from None
    wheel = dest / WHEEL_NAME
    if proc.returncode != 0 or not wheel.is_file():
        msg = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]
        raise DownloadError(
            f"pip download {WHEEL_REQUIREMENT} failed: {msg}",
            hint="give the wheel: `genre fetch model musicnn --from WHEEL` (get it with `pip download --no-deps musicnn==0.1.0`)",
        )
    return wheel


def convert(
    wheel: str | Path | None,
    out_dir: str | Path,
    *,
    variants: tuple[str, ...] = ("msd", "mtt"),
    sha256: str | None = WHEEL_SHA256,
    verify: bool = True,
) -> dict[str, Path]:
    """Convert the pretrained musicnn taggers of the ``musicnn`` 0.1.0 wheel to HDF5.

    Parameters
    ----------
    wheel : path or None
        ``musicnn-0.1.0-py3-none-any.whl``; ``None`` downloads it with pip into a temporary
        folder (network needed; removed afterwards).
    out_dir : path
        Folder for ``musicnn-msd.h5`` / ``musicnn-mtt.h5`` (created; files replaced atomically).
    variants : tuple of str
        Which taggers (``msd``, ``mtt``).
    sha256 : str or None
        Expected sha256 of the wheel (``None`` skips the check — for tests with a wheel they
        built themselves).
    verify : bool
        Check the checkpoints' CRC32C sums.

    Returns
    -------
    dict of str to Path
        Variant key -> written file.

    Raises
    ------
    InputError
        The wheel is missing or unreadable.
    CheckpointError
        Wrong sha256, not a zip, missing or corrupt checkpoint, tags that differ from ours,
        tensors that do not fit the network.
    DownloadError
        ``wheel=None`` and pip could not fetch it.
    """
    vs = [variant(v) for v in variants]
    if wheel is None:
        with tempfile.TemporaryDirectory(prefix="genre-musicnn-") as tmp:
            return convert(download_wheel(tmp), out_dir, variants=variants, sha256=sha256, verify=verify)
    wheel = Path(wheel)
    if not wheel.is_file():
        raise InputError(f"{wheel}: no such file", hint="get it with `pip download --no-deps musicnn==0.1.0`")
    if sha256 is not None:
        got = sha256_file(wheel)
        if got != sha256:
            raise CheckpointError(f"{wheel}: sha256 {got} differs from the expected {sha256} (not the musicnn 0.1.0 wheel, or damaged)")
    where = str(wheel)
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{where}: not a readable wheel (zip): {exc}") from None
    from genre_cli.pretrained.weights import write_weights

    out: dict[str, Path] = {}
    with zf:
        try:
            license_text = zf.read(WHEEL_LICENSE_MEMBER).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            raise CheckpointError(f"{where}: no licence file {WHEEL_LICENSE_MEMBER}") from None
        labels = _wheel_labels(zf, where)
        for v in vs:
            theirs = labels.get(f"{v.key.upper()}_LABELS")
            if theirs != list(v.tags):
                raise CheckpointError(f"{where}: the wheel's {v.key.upper()}_LABELS differ from genre's {v.name} tags")
            tf = read_wheel_variant(zf, v, where=where, verify=verify)
            source = {
                "wheel": wheel.name,
                "sha256": sha256 or sha256_file(wheel),
                "checkpoint": v.checkpoint,
                "requirement": WHEEL_REQUIREMENT,
                "index": "https://pypi.org/project/musicnn/0.1.0/",
            }
            out[v.key] = write_weights(Path(out_dir) / v.filename, v, tf_to_state_dict(tf), source=source, license_text=license_text)
    return out


#: Models ``genre fetch model NAME`` knows.
FETCHABLE = ("musicnn",)


def user_models_dir(root: str | Path | None = None) -> Path:
    """Where ``genre fetch model`` writes by default: ``<data root>/models`` (``root``, else
    ``$GENRE_DATA``, else ``~/.cache/genre/data``)."""
    import os

    return Path(os.path.expanduser(str(root or os.environ.get("GENRE_DATA") or "~/.cache/genre/data"))) / "models"


def fetch_model(
    name: str,
    *,
    source: str | Path | None = None,
    out_dir: str | Path,
    variants: tuple[str, ...] = ("msd", "mtt"),
    progress: bool = False,
    index_url: str | None = None,
) -> dict[str, Path]:
    """``genre fetch model musicnn``: get the musicnn 0.1.0 wheel and convert its taggers.

    Parameters
    ----------
    name : {"musicnn"}
    source : path, URL or None
        A local wheel; an ``http(s)://`` URL of it (downloaded and sha256-checked by
        :func:`genre_cli.download.download`); ``None``: ``pip download`` (:func:`download_wheel`).
    out_dir : path
        Folder for ``musicnn-msd.h5`` and ``musicnn-mtt.h5`` (files replaced atomically).

    Returns
    -------
    dict of str to Path
        Variant key -> written file.

    Raises
    ------
    UsageError
        Unknown model name.
    InputError, CheckpointError, DownloadError
        As :func:`convert` and the download.
    """
    from genre_cli.errors import UsageError
    from genre_cli.pretrained import variants as _v

    if name not in FETCHABLE:
        raise UsageError(f"unknown model to fetch {name!r}; valid: {', '.join(FETCHABLE)}")
    with tempfile.TemporaryDirectory(prefix="genre-musicnn-") as tmp:
        if source is None:
            wheel = download_wheel(tmp, index_url=index_url)
        elif "://" in str(source):
            from genre_cli.download import download

            wheel = Path(tmp) / WHEEL_NAME
            download([str(source)], wheel, checksum=f"sha256:{_v.WHEEL_SHA256}", progress=progress)
        else:
            wheel = Path(source)
        return convert(wheel, out_dir, variants=variants, sha256=_v.WHEEL_SHA256)


def main(argv: list[str] | None = None) -> int:
    """``python -m genre_cli.pretrained.convert``: exit 0 ok, 1 failure, 2 bad input."""
    ap = argparse.ArgumentParser(prog="python -m genre_cli.pretrained.convert", description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help="musicnn-0.1.0-py3-none-any.whl (default: download it with pip)")
    ap.add_argument("--out", type=Path, default=user_models_dir(), help=f"output folder (default: {user_models_dir()})")
    ap.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="msd and/or mtt (default: both)")
    args = ap.parse_args(argv)
    try:
        paths = convert(args.wheel, args.out, variants=tuple(args.variant or VARIANTS))
    except GenreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for key, p in paths.items():
        print(f"{VARIANTS[key].name}: {p} ({p.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
