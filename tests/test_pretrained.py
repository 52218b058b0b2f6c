"""Pretrained musicnn: checkpoint reader, converter, network, pre-processing, shipped weights,
the authors' published outputs, file embedding. No network access (the converter test builds
its own wheel; the real wheel is checked by bench/musicnn_weights.py)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from genre_cli.errors import ArtifactError, AudioError, CheckpointError, InputError, UsageError
from genre_cli.models import build_model, model_info
from genre_cli.models.base import for_inference
from genre_cli.models.musicnn import TAPS, Musicnn
from genre_cli.pretrained import convert as conv
from genre_cli.pretrained import preprocess as pp
from genre_cli.pretrained import tfbundle
from genre_cli.pretrained.embed import Failure, embed_file, embed_files, embed_patches, embed_signal, embed_windows
from genre_cli.pretrained.variants import MSD_TAGS, MTT_TAGS, VARIANTS
from genre_cli.pretrained.weights import PACKAGE_DIR, load_musicnn, read_info, shipped_path

from conftest import SHARED_DATA

torch.set_num_threads(2)
REFERENCE = SHARED_DATA / "musicnn-reference"
GOLDEN = Path(__file__).resolve().parent / "data" / "musicnn_golden.json"


# ============================================================================ a bundle writer
# An independent writer of TensorFlow tensor bundles (LevelDB table + data file), following
# LevelDB's table_format.md and TF's tensor_bundle.proto, so the reader is tested on files
# the test makes itself.
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, wire: int, payload: bytes) -> bytes:
    return _varint(num << 3 | wire) + payload


def _entry_proto(dtype: int, shape: tuple[int, ...], offset: int, size: int, crc: int | None, shard: int = 0) -> bytes:
    shape_msg = b"".join(_field(2, 2, _varint(len(d)) + d) for d in (_field(1, 0, _varint(s)) for s in shape))
    msg = _field(1, 0, _varint(dtype)) + _field(2, 2, _varint(len(shape_msg)) + shape_msg)
    if shard:
        msg += _field(3, 0, _varint(shard))
    msg += _field(4, 0, _varint(offset)) + _field(5, 0, _varint(size))
    if crc is not None:
        msg += _field(6, 5, struct.pack("<I", crc))
    return msg


def _block(entries: list[tuple[bytes, bytes]], restart_interval: int = 3) -> bytes:
    out, restarts, prev = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(key), len(prev)) and key[shared] == prev[shared]:
                shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        prev = key
    if not restarts:
        restarts = [0]
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def write_bundle(
    tensors: dict[str, np.ndarray], *, per_block: int = 2, compression: int = 0, extra_entries: dict[str, bytes] | None = None
) -> tuple[bytes, bytes]:
    """(index bytes, data bytes) of a one-shard bundle holding ``tensors``."""
    data = bytearray()
    entries = [(b"", _field(1, 0, _varint(1)) + _field(2, 0, _varint(0)) + _field(3, 2, _varint(2) + _field(1, 0, _varint(1))))]
    codes = {np.dtype("<f4"): 1, np.dtype("<f8"): 2, np.dtype("<i4"): 3, np.dtype("<i8"): 9, np.dtype("<f2"): 19}
    for name in sorted(tensors):
        a = np.array(tensors[name], order="C")  # (ascontiguousarray would make scalars 1-d)
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        crc = tfbundle.mask_crc(tfbundle.crc32c(raw))
        entries.append((name.encode(), _entry_proto(codes[a.dtype.newbyteorder("<")], a.shape, len(data), len(raw), crc)))
        data += raw
    for name, proto in (extra_entries or {}).items():
        entries.append((name.encode(), proto))
    entries.sort(key=lambda kv: kv[0])
    table, index_entries = bytearray(), []
    for i in range(0, len(entries), per_block):
        chunk = entries[i : i + per_block]
        body = _block(chunk)
        trailer = bytes([compression]) + struct.pack("<I", tfbundle.mask_crc(tfbundle.crc32c(body + bytes([compression]))))
        index_entries.append((chunk[-1][0], _varint(len(table)) + _varint(len(body))))
        table += body + trailer

    def add_block(body: bytes) -> bytes:
        handle = _varint(len(table)) + _varint(len(body))
        table.extend(body + b"\0" + struct.pack("<I", tfbundle.mask_crc(tfbundle.crc32c(body + b"\0"))))
        return handle

    meta = add_block(_block([]))
    index = add_block(_block(index_entries, restart_interval=1))
    footer = (meta + index).ljust(40, b"\0") + struct.pack("<Q", tfbundle.TABLE_MAGIC)
    return bytes(table + footer), bytes(data)


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv2d/kernel": rng.standard_normal((7, 3, 1, 4)).astype(np.float32),
        "conv2d/bias": rng.standard_normal(4).astype(np.float32),
        "conv2d_1/kernel": rng.standard_normal((2, 5)).astype(np.float64),
        "global_step": np.array(1234567890123, dtype=np.int64),
        "batch_normalization/gamma": np.array([1.5], dtype=np.float32),
        "batch_normalization/moving_mean": np.arange(6, dtype=np.int32).reshape(2, 3),
        "half": np.array([1.0, -2.5], dtype=np.float16),
    }


# ============================================================================ reader
def test_crc32c_known_values():
    assert tfbundle.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert tfbundle.crc32c(b"") == 0
    assert tfbundle.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4 test vector


def test_reader_roundtrip_on_a_bundle_written_here(tmp_path):
    tensors = _tensors()
    index, data = write_bundle(tensors)
    header, entries = tfbundle.parse_index(index)
    assert header.num_shards == 1 and header.little_endian
    assert list(entries) == sorted(tensors)  # the table's order, every key found across blocks
    assert entries["conv2d/kernel"].shape == (7, 3, 1, 4) and entries["global_step"].shape == ()
    got = tfbundle.read_tensors(index, {0: data})
    assert set(got) == set(tensors)
    for k, a in tensors.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape
        np.testing.assert_array_equal(got[k], a)
    # on disk, by prefix, only some names
    (tmp_path / "ckpt.index").write_bytes(index)
    (tmp_path / "ckpt.data-00000-of-00001").write_bytes(data)
    some = tfbundle.read_checkpoint(tmp_path / "ckpt", names=["conv2d/bias"])
    assert list(some) == ["conv2d/bias"]
    np.testing.assert_array_equal(some["conv2d/bias"], tensors["conv2d/bias"])


@pytest.mark.parametrize("per_block", [1, 3, 100])
def test_reader_any_block_split(per_block):
    tensors = _tensors()
    index, data = write_bundle(tensors, per_block=per_block)
    got = tfbundle.read_tensors(index, {0: data})
    assert all(np.array_equal(got[k], tensors[k]) for k in tensors)


def _flip(b: bytes, pos: int) -> bytes:
    arr = bytearray(b)
    arr[pos] ^= 0x40
    return bytes(arr)


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda i, d: (i[:-1] + b"\0", d), "bad table magic"),
        (lambda i, d: (i[:20], d), "too short"),
        (lambda i, d: (_flip(i, 10), d), "CRC32C"),  # a byte inside the first data block
        (lambda i, d: (i, _flip(d, 5)), "CRC32C mismatch"),
        (lambda i, d: (i, d[:-8]), "outside data shard"),
        (lambda i, d: (b"\0" * 100, d), "bad table magic"),
    ],
)
def test_reader_rejects_corrupt_input(damage, needle):
    index, data = write_bundle(_tensors())
    bad_index, bad_data = damage(index, data)
    with pytest.raises(CheckpointError, match=needle):
        tfbundle.read_tensors(bad_index, {0: bad_data})


def test_reader_rejects_unsupported_records():
    index, data = write_bundle(_tensors(), compression=1)  # snappy-compressed blocks
    with pytest.raises(CheckpointError, match="compressed"):
        tfbundle.parse_index(index)
    string_entry = _entry_proto(7, (2,), 0, 4, None)  # DT_STRING
    index, data = write_bundle(_tensors(), extra_entries={"names": string_entry})
    assert "names" not in tfbundle.read_tensors(index, {0: data})  # skipped when reading everything
    with pytest.raises(CheckpointError, match="unsupported dtype string"):
        tfbundle.read_tensors(index, {0: data}, names=["names"])
    wrong_size = _entry_proto(1, (3,), 0, 8, None)  # 3 float32 need 12 bytes
    index, data = write_bundle(_tensors(), extra_entries={"short": wrong_size})
    with pytest.raises(CheckpointError, match="12 expected"):
        tfbundle.read_tensors(index, {0: data})
    with pytest.raises(CheckpointError, match="no variable"):
        tfbundle.read_tensors(index, {0: data}, names=["nope"])
    with pytest.raises(CheckpointError, match="missing"):
        tfbundle.read_tensors(index, {}, names=["conv2d/bias"])


def test_read_checkpoint_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="cannot be read"):
        tfbundle.read_checkpoint(tmp_path / "nothing")
    assert issubclass(CheckpointError, InputError)  # exit code 2


# ============================================================================ converter
def _fake_wheel(path: Path, *, tags: dict[str, tuple[str, ...]] | None = None, seed: int = 0) -> dict[str, dict]:
    """A zip laid out like the musicnn wheel, with random musicnn weights in TF layout."""
    tags = tags or {"msd": MSD_TAGS, "mtt": MTT_TAGS}
    rng = np.random.default_rng(seed)
    sources = {}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("musicnn-0.1.0.dist-info/LICENSE.md", "ISC licence text for the test\n")
        zf.writestr("musicnn-0.1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr("musicnn-0.1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: musicnn\nVersion: 0.1.0\n")
        zf.writestr("musicnn/configuration.py", f"SR = 16000\nMTT_LABELS = {list(tags['mtt'])!r}\nMSD_LABELS = {list(tags['msd'])!r}\n")
        for key, v in VARIANTS.items():
            model = Musicnn(n_classes=50)
            tf = {}
            for prefix, layer, bn in conv.LAYER_MAP:
                mod = model.get_submodule(prefix)
                if layer:
                    w = (mod.conv if hasattr(mod, "conv") else mod).weight
                    shape = {4: lambda s: (s[2], s[3], s[1], s[0]), 3: lambda s: (s[2], s[1], 1, s[0]), 2: lambda s: (s[1], s[0])}[w.dim()](
                        tuple(w.shape)
                    )
                    tf[f"{layer}/kernel"] = rng.standard_normal(shape).astype(np.float32)
                    tf[f"{layer}/bias"] = rng.standard_normal(w.shape[0]).astype(np.float32)
                if bn:
                    n = (mod.bn if hasattr(mod, "bn") else mod).num_features
                    tf[f"{bn}/gamma"] = rng.standard_normal(n).astype(np.float32)
                    tf[f"{bn}/beta"] = rng.standard_normal(n).astype(np.float32)
                    tf[f"{bn}/moving_mean"] = rng.standard_normal(n).astype(np.float32)
                    tf[f"{bn}/moving_variance"] = rng.uniform(0.5, 2, n).astype(np.float32)
            tf[f"{conv.LAYER_MAP[1][1]}/kernel/Adam"] = np.zeros(3, np.float32)  # optimizer slots are ignored
            index, data = write_bundle(tf, per_block=16)
            zf.writestr(v.checkpoint + ".index", index)
            zf.writestr(v.checkpoint + ".data-00000-of-00001", data)
            sources[key] = tf
    return sources


def test_convert_a_wheel_built_here(tmp_path):
    wheel = tmp_path / "musicnn-0.1.0-py3-none-any.whl"
    tf = _fake_wheel(wheel)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    paths = conv.convert(wheel, tmp_path / "out", variants=("mtt",), sha256=sha)
    assert list(paths) == ["mtt"] and paths["mtt"].name == "musicnn-mtt.h5"
    info = read_info(paths["mtt"])
    assert info["labels"] == list(MTT_TAGS) and info["output"] == "sigmoid" and info["license"] == "ISC"
    assert info["source"]["sha256"] == sha and info["license_text"].startswith("ISC licence text")
    assert info["preprocessing"]["pad_mode"] == "reflect" and info["n_values"] == 792_079
    model = load_musicnn(paths["mtt"], inference=False)
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    src = tf["mtt"]
    # values copied bit for bit, kernels transposed to torch's layout
    np.testing.assert_array_equal(sd["timbral.0.conv.weight"], src["conv2d/kernel"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(sd["midend.1.conv.weight"], src["conv2d_6/kernel"][:, :, 0, :].transpose(2, 1, 0))
    np.testing.assert_array_equal(sd["dense.weight"], src["dense/kernel"].T)
    np.testing.assert_array_equal(sd["out.bias"], src["dense_1/bias"])
    np.testing.assert_array_equal(sd["pool_bn.running_var"], src["batch_normalization_9/moving_variance"])
    np.testing.assert_array_equal(sd["input_bn.weight"], src["batch_normalization/gamma"])


def test_convert_refuses_wrong_wheels(tmp_path):
    wheel = tmp_path / "musicnn-0.1.0-py3-none-any.whl"
    _fake_wheel(wheel)
    with pytest.raises(CheckpointError, match="sha256"):
        conv.convert(wheel, tmp_path / "out")  # the real wheel's sha256 is expected by default
    bad_tags = tmp_path / "tags.whl"
    _fake_wheel(bad_tags, tags={"msd": MSD_TAGS, "mtt": ("x",) * 50})
    with pytest.raises(CheckpointError, match="MTT_LABELS differ"):
        conv.convert(bad_tags, tmp_path / "out", sha256=None, variants=("mtt",))
    not_zip = tmp_path / "junk.whl"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable wheel"):
        conv.convert(not_zip, tmp_path / "out", sha256=None)
    with pytest.raises(InputError, match="no such file"):
        conv.convert(tmp_path / "missing.whl", tmp_path / "out")
    with pytest.raises(UsageError, match="valid"):
        conv.convert(wheel, tmp_path / "out", variants=("vgg",))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_convert_command_exit_codes(tmp_path, capsys):
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(b"x")
    assert conv.main(["--wheel", str(wheel), "--out", str(tmp_path / "o")]) == 2
    assert "sha256" in capsys.readouterr().err


# ============================================================================ network
def test_registered_and_shapes():
    info = model_info("musicnn")
    assert info["kind"] == "torch" and info["inputs"] == ("spectrogram",)
    m = build_model("musicnn", n_classes=10, input_shapes={"spectrogram": (187, 96)}).eval()
    assert m.output == "softmax"  # a classifier trained with cross-entropy
    x = torch.randn(3, 187, 96)
    with torch.no_grad():
        t = m.taps(x, TAPS)
    expect = {
        "timbral": (3, 187, 408),
        "temporal": (3, 187, 153),
        "cnn1": (3, 187, 64),
        "cnn2": (3, 187, 64),
        "cnn3": (3, 187, 64),
        "mean_pool": (3, 753),
        "max_pool": (3, 753),
        "penultimate": (3, 200),
        "logits": (3, 10),
        "likelihoods": (3, 10),
    }
    assert {k: tuple(v.shape) for k, v in t.items()} == expect
    torch.testing.assert_close(t["likelihoods"].sum(1), torch.ones(3))
    with pytest.raises(UsageError, match="valid"):
        m.taps(x, ("pool5",))
    with torch.no_grad():  # any length runs (everything keeps time; the back-end pools it)
        assert m(torch.randn(2, 40, 96)).shape == (2, 10)


def test_fast_inference_equals_plain_layers():
    plain = load_musicnn("msd", inference=False).eval()
    fast = for_inference(load_musicnn("msd", inference=False))  # base.for_inference defers to the model's own
    assert fast._fast is not None
    x = torch.from_numpy(pp.musicnn_input(np.random.default_rng(3).standard_normal(16000 * 10).astype(np.float32) * 0.3))
    with torch.no_grad():
        a = plain.taps(x, ("timbral", "temporal", "penultimate", "likelihoods"))
        b = fast.taps(x, ("timbral", "temporal", "penultimate", "likelihoods"))
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-4)
    fast._fast.mkldnn = False  # the dense path (CUDA, builds without oneDNN)
    with torch.no_grad():
        c = fast.taps(x, ("timbral", "temporal", "penultimate", "likelihoods"))
    for k in a:
        torch.testing.assert_close(c[k], a[k], rtol=1e-5, atol=1e-4)
    fast.train()
    assert fast._fast is None  # training uses the plain layers again


def test_pretrained_golden_outputs():
    """The shipped models on a fixed signal equal the stored outputs of a trusted float64 run
    of the plain layers (regenerate with tests/musicnn_golden.py)."""
    import musicnn_golden

    gold = json.loads(GOLDEN.read_text())
    x = pp.musicnn_input(musicnn_golden.golden_signal())
    assert len(x) == gold["n_patches"] == 2
    for name, tags in (("msd", MSD_TAGS), ("mtt", MTT_TAGS)):
        model = load_musicnn(name)
        assert model.labels == tags and model.output == "sigmoid"
        emb, lik = embed_patches(model, x)
        assert emb.shape == (2, 200) and lik.shape == (2, 50)
        np.testing.assert_allclose(lik, gold[name]["likelihoods"], atol=2e-5)
        np.testing.assert_allclose(emb.mean(0), gold[name]["penultimate_mean"], atol=2e-4)
        with torch.no_grad():
            mp = model.taps(torch.from_numpy(x), ("max_pool",))["max_pool"][0, :16].numpy()
        np.testing.assert_allclose(mp, gold[name]["max_pool_0_first16"], rtol=1e-5, atol=1e-3)


def test_shipped_files():
    for v in VARIANTS.values():
        p = shipped_path(v.name)
        assert p == PACKAGE_DIR / v.filename and p.is_file()
        assert p.stat().st_size < 3_400_000  # float32, 792,079 values
        info = read_info(p)
        assert info["name"] == v.name and info["labels"] == list(v.tags) and info["n_values"] == 792_079
        assert info["source"]["sha256"] == conv.WHEEL_SHA256
    assert "Permission to use, copy, modify" in (PACKAGE_DIR / "LICENSE-musicnn.txt").read_text()
    with pytest.raises(UsageError, match="musicnn-msd"):
        load_musicnn("vgg")


def test_weight_file_errors(tmp_path):
    import h5py

    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        f.attrs["stage"] = "train"
        f.attrs["fingerprint"] = "x"
        f.attrs["complete"] = True
    with pytest.raises(ArtifactError, match="expected pretrained"):
        load_musicnn(p)


# ============================================================================ pre-processing
def test_logmel_matches_librosa_reflect_padded():
    import librosa

    y = (0.3 * np.random.default_rng(1).standard_normal(16000 * 3 + 77)).astype(np.float32)
    ref = librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96, pad_mode="reflect").T
    ours = pp.logmel(y)
    assert ours.shape == ref.shape == (1 + len(y) // 256, 96) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, np.log10(10000 * ref + 1), atol=1e-4)


def test_patches_grid_and_policies():
    y = np.random.default_rng(2).standard_normal(16000 * 10).astype(np.float32)  # 626 frames
    x = pp.musicnn_input(y)
    assert x.shape == (3, 187, 96)  # 3 full patches, the 65-frame tail dropped (as the original)
    spec = pp.logmel(y)
    np.testing.assert_array_equal(x[1], spec[187:374])
    x_end = pp.musicnn_input(y, tail="end")
    assert len(x_end) == 4
    np.testing.assert_array_equal(x_end[-1], spec[-187:])
    assert len(pp.musicnn_input(y, hop_frames=93)) == 5
    short = y[:16000]  # 1 s = 63 frames
    xs = pp.musicnn_input(short)
    assert xs.shape == (1, 187, 96)
    np.testing.assert_array_equal(xs[0, 63:126], xs[0, :63])  # repeat-padded, as the authors trained
    with pytest.raises(AudioError, match="too short"):
        pp.musicnn_input(short, short="error")
    assert pp.musicnn_input(y[: 186 * 256], short="error").shape == (1, 187, 96)  # 2.976 s: exactly one patch
    with pytest.raises(AudioError, match="no audio"):
        pp.musicnn_input(np.zeros(0, np.float32))
    with pytest.raises(UsageError):
        pp.musicnn_input(y, tail="pad")


@pytest.mark.parametrize("n", [1, 300, 186 * 256, 16000 * 7 + 13])
@pytest.mark.parametrize("tail", ["drop", "end"])
def test_patch_stream_equals_whole_signal(n, tail):
    rng = np.random.default_rng(n)
    y = rng.standard_normal(n).astype(np.float32)
    whole = pp.musicnn_input(y, tail=tail, hop_frames=100)
    for _ in range(3):
        blocks = np.split(y, np.sort(rng.integers(0, n, size=rng.integers(0, 6))))
        got = list(pp.stream_patches(blocks, tail=tail, hop_frames=100))
        p = np.concatenate([g[1] for g in got])
        assert p.shape == whole.shape
        np.testing.assert_allclose(p, whole, atol=1e-5)  # frames batched differently: float rounding only


# ============================================================================ the authors' outputs
#: Clip-mean MTT likelihoods of joram.mp3 read off the authors' bar chart
#: (musicnn-reference/tagging_example_2.png: 435 px per unit, 1 px = 0.0023; bars measured by
#: summing their blue coverage per column). The reference README reads the first six as
#: techno 0.585, electronic 0.545, synth 0.42, fast 0.275, beat 0.215, drums 0.12.
PUBLISHED_JORAM = {
    "techno": 0.5885,
    "electronic": 0.5448,
    "synth": 0.4230,
    "fast": 0.2759,
    "beat": 0.2161,
    "drums": 0.1241,
    "no vocals": 0.0989,
    "no vocal": 0.0828,
    "dance": 0.0759,
    "ambient": 0.0621,
    "beats": 0.0621,
}


def _reference(name: str) -> Path:
    p = REFERENCE / name
    if not p.is_file():
        pytest.skip(f"{p} not found: the authors' demo clips live in the shared data folder")
    return p


def test_published_joram_tags():
    """joram.mp3 with the MTT model: the published top-10 order and clip-mean likelihoods."""
    emb = embed_file(load_musicnn("mtt"), _reference("joram.mp3"))
    assert len(emb.starts) == 9  # 29.3 s: 9 patches, as the authors' taggram
    mean = dict(zip(emb.labels, emb.mean_likelihoods.tolist()))
    top = [t for t, _ in emb.top_tags(10)]
    # the chart ranks these nine clearly; ambient and beats tie at the chart's resolution for 10th
    assert top[:9] == ["techno", "electronic", "synth", "fast", "beat", "drums", "no vocals", "no vocal", "dance"]
    assert top[9] in ("ambient", "beats")
    for tag, value in PUBLISHED_JORAM.items():
        assert abs(mean[tag] - value) < 0.02, (tag, mean[tag], value)


def _read_taggram(png: Path) -> np.ndarray:
    """Colour positions in [0, 1] of the 50 x 9 cells of the authors' viridis taggram figure."""
    import matplotlib
    from PIL import Image

    im = np.asarray(Image.open(png).convert("RGB")).astype(float)
    colourful = im.max(-1) - im.min(-1) > 40  # viridis is never grey; axes, text and background are
    rows, cols = np.flatnonzero(colourful.mean(1) > 0.5), np.flatnonzero(colourful.mean(0) > 0.5)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    lut = matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255
    out = np.zeros((50, 9))
    for i in range(50):
        for j in range(9):
            y, x = int(r0 + (i + 0.5) * (r1 - r0) / 50), int(c0 + (j + 0.5) * (c1 - c0) / 9)
            px = im[y - 1 : y + 2, x - 3 : x + 4].reshape(-1, 3)
            out[i, j] = np.median(((px[:, None] - lut[None]) ** 2).sum(-1).argmin(1)) / 255
    return out


def test_published_joram_taggram():
    """Every per-patch likelihood (50 tags x 9 patches) of the authors' taggram figure: its
    colours, read back through viridis and imshow's min-max scaling, match ours within 0.01
    (one colour level is 0.0033 here)."""
    emb = embed_file(load_musicnn("mtt"), _reference("joram.mp3"))
    ours = emb.likelihoods.T
    published = ours.min() + _read_taggram(_reference("tagging_example_1.png")) * (ours.max() - ours.min())
    assert np.abs(published - ours).max() < 0.01
    np.testing.assert_allclose(published.mean(1), emb.mean_likelihoods, atol=0.004)  # the clip means


def test_published_msd_preview_top3():
    """TRWJAZW128F42760DD_test.mp3 (22.05 kHz stereo) with the MTT model: top-3 guitar, piano, fast."""
    emb = embed_file(load_musicnn("mtt"), _reference("TRWJAZW128F42760DD_test.mp3"))
    assert [t for t, _ in emb.top_tags(3)] == ["guitar", "piano", "fast"]


# ============================================================================ files
def test_embed_files_in_order_with_failures(tmp_path):
    model = load_musicnn("msd")
    rng = np.random.default_rng(5)
    paths = []
    for i, seconds in enumerate((7.0, 1.0, 4.0)):
        p = tmp_path / f"{i}.wav"
        sf.write(p, (0.2 * rng.standard_normal((int(seconds * 22050), 2))).astype(np.float32), 22050)
        paths.append(p)
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"not audio at all")
    paths.insert(1, bad)
    out = list(embed_files(model, paths, decoders=2, workers=2, block_seconds=1.5))
    assert [type(o).__name__ for o in out] == ["Embedding", "Failure", "Embedding", "Embedding"]
    assert str(bad) in out[1].reason
    from genre_cli.audio import load

    for res, p in zip([out[0], out[2], out[3]], [paths[0], paths[2], paths[3]]):
        y, _ = load(p, sr=16000)
        ref = embed_signal(model, y)
        assert res.path == p and abs(res.duration - len(y) / 16000) < 1e-9
        np.testing.assert_array_equal(res.starts, ref.starts)
        np.testing.assert_allclose(res.embedding, ref.embedding, atol=1e-4)
        np.testing.assert_allclose(res.likelihoods, ref.likelihoods, atol=1e-5)
    assert len(out[0].starts) == 2 and len(out[2].starts) == 1  # 1 s: one repeat-padded patch
    with pytest.raises(AudioError, match="too short"):
        embed_file(model, paths[2], short="error")
    assert torch.get_num_threads() == 2  # restored after the run
    assert isinstance(Failure(bad, "x"), Failure)


def test_embed_files_stops_cleanly_when_abandoned(tmp_path):
    model = load_musicnn("mtt")
    p = tmp_path / "a.wav"
    sf.write(p, np.zeros(16000 * 4, np.float32), 16000)
    gen = embed_files(model, [p] * 6, decoders=1, workers=1)
    first = next(gen)
    assert len(first.starts) == 1
    gen.close()  # threads stop, torch threads restored
    assert torch.get_num_threads() == 2


def test_embed_windows_at_any_rate():
    model = load_musicnn("msd")
    rng = np.random.default_rng(9)
    w = (0.2 * rng.standard_normal((3, 22050 * 7))).astype(np.float32)  # 7-s windows at 22.05 kHz
    emb, lik = embed_windows(model, w, 22050)
    assert emb.shape == (3, 200) and lik.shape == (3, 50) and ((lik >= 0) & (lik <= 1)).all()
    from genre_cli.audio import resample

    ref = embed_signal(model, resample(w[1], 22050, 16000))  # two patches, averaged
    np.testing.assert_allclose(emb[1], ref.mean_embedding, atol=1e-5)
    np.testing.assert_allclose(lik[1], ref.mean_likelihoods, atol=1e-6)
    with pytest.raises(AudioError, match="too short"):
        embed_windows(model, w[:, :22050], 22050, short="error")


# ============================================================================ genre fetch model musicnn
class _Serve:
    """A loopback HTTP server over ``root`` (a wheel, and a PEP 503 index for pip)."""

    def __init__(self, root: Path):
        import functools
        import threading
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def wheel_site(tmp_path, monkeypatch):
    """A self-built musicnn wheel, served on loopback both as a file and from a pip index;
    its sha256 stands in for the real wheel's."""
    from genre_cli.pretrained import variants

    site = tmp_path / "site"
    (site / "simple" / "musicnn").mkdir(parents=True)
    wheel = site / "musicnn-0.1.0-py3-none-any.whl"
    _fake_wheel(wheel)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (site / "simple" / "musicnn" / "index.html").write_text(f'<a href="../../{wheel.name}#sha256={sha}">{wheel.name}</a>\n')
    monkeypatch.setattr(variants, "WHEEL_SHA256", sha)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip sees the loopback index only: no configured mirror, no internet
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(var, raising=False)
    server = _Serve(site)
    yield wheel, server.url
    server.close()


def test_fetch_model_writes_to_the_data_folder_never_the_package(wheel_site, tmp_path, monkeypatch):
    from conftest import genre

    wheel, _url = wheel_site
    monkeypatch.setenv("GENRE_DATA", str(tmp_path / "data"))
    before = {p: p.stat().st_mtime_ns for p in PACKAGE_DIR.iterdir()}
    res = genre("fetch", "model", "musicnn", "--from", wheel)
    assert res.exit_code == 0, res.output
    written = [Path(line) for line in res.stdout.split()]
    assert written == [tmp_path / "data" / "models" / "musicnn-msd.h5", tmp_path / "data" / "models" / "musicnn-mtt.h5"]
    assert read_info(written[1])["source"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert {p: p.stat().st_mtime_ns for p in PACKAGE_DIR.iterdir()} == before
    assert genre("fetch", "model", "musicnn", "--from", wheel, "-o", tmp_path / "x", "--into-package").exit_code == 2
    assert genre("fetch", "model", "vggish").exit_code == 2
    assert genre("fetch", "demo", "musicnn").exit_code == 2


def test_fetch_model_from_a_url_and_from_a_pip_index(wheel_site, tmp_path):
    wheel, url = wheel_site
    by_url = conv.fetch_model("musicnn", source=f"{url}/{wheel.name}", out_dir=tmp_path / "u", variants=("mtt",))
    by_pip = conv.fetch_model("musicnn", out_dir=tmp_path / "p", variants=("mtt",), index_url=f"{url}/simple/")
    local = conv.fetch_model("musicnn", source=wheel, out_dir=tmp_path / "l", variants=("mtt",))
    fps = {read_info(p["mtt"])["fingerprint"] for p in (by_url, by_pip, local)}
    assert len(fps) == 1  # the same wheel, the same conversion
