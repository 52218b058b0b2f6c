"""Model zoo + persistence tests (CPU, small inputs; the whole file runs in well under 90 s)."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch

from genre_cli.errors import ArtifactError, UsageError
from genre_cli.models import MODELS, build_model, list_models, model_info
from genre_cli.models.base import for_inference
from genre_cli.models.persist import load_sklearn, load_torch, load_torch_state, save_sklearn, save_torch

torch.set_num_threads(2)

EXPECTED = {
    "logreg",
    "svm",
    "naive-bayes",
    "knn",
    "random-forest",
    "mlp",
    "cnn3",
    "cnn-mlp",
    "resnet18",
    "bigru",
    "res-bigru",
    "cnn6",
    "lstm",
    "dupconv",
    "rescat",
    "musicnn",
}
N_CLASSES, PER_CLASS = 3, 8
TINY = {"spectrogram": (16, 12), "vector": (10,)}  # (n_frames, n_bins), (d,)
#: The ResNet-18 based models are trained at a quarter width (16 instead of 64 base channels:
#: same layers and code path, ~16x fewer FLOPs and parameters) to keep the 2-core CPU run short;
#: the full-width models are built and run in ``test_other_input_sizes_and_counts``.
TRAIN_CFG = {"resnet18": {"width": 16}, "res-bigru": {"width": 16}}


def _slots(name):
    return model_info(name)["inputs"]


def _data(slots, seed=0):
    """24 samples, 3 classes, separable: class c lifts its own band of bins / vector entries."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N_CLASSES).repeat_interleave(PER_CLASS)
    xs = {}
    for slot in slots:
        shape = TINY[slot]
        x = 0.3 * torch.randn(len(y), *shape, generator=g)
        width = shape[-1] // N_CLASSES
        for c in range(N_CLASSES):
            x[y == c, ..., c * width : (c + 1) * width] += 1.5
        xs[slot] = x
    return xs, y


def _flat(xs, slots):
    return np.concatenate([xs[s].reshape(len(xs[s]), -1).numpy() for s in slots], axis=1)


def _torch_acc(model, xs, y):
    model.eval()
    with torch.no_grad():
        acc = (model(**xs).argmax(1) == y).float().mean().item()
    model.train()
    return acc


# -- registry --------------------------------------------------------------------------------
def test_registry_lists_all_models_with_info():
    assert set(list_models()) == EXPECTED
    for name in list_models():
        info = model_info(name)
        assert info["kind"] in ("torch", "sklearn")
        assert info["inputs"] and info["source"] and info["description"]
        assert isinstance(info["config"], dict)
        if info["kind"] == "sklearn":
            assert info["inputs"] == ("vector",)
    assert model_info("mlp")["config"]["weight_decay"] == 1e-3
    assert model_info("mlp")["config"]["depth"] == 4
    assert model_info("svm")["config"]["kernel"] == "rbf"
    assert model_info("knn")["config"]["k"] == 10
    assert model_info("cnn-mlp")["inputs"] == ("spectrogram", "vector")
    assert model_info("dupconv")["config"]["l2_first"] == 0.02


def test_unknown_model_lists_valid_names():
    with pytest.raises(UsageError) as exc:
        build_model("transformer", n_classes=3, input_shapes=TINY)
    for name in ("cnn6", "svm", "dupconv"):
        assert name in str(exc.value)
    with pytest.raises(UsageError):
        model_info("nope")


def test_duplicate_registration_raises_valueerror():
    before = len(MODELS)
    with pytest.raises(ValueError, match="already registered"):
        MODELS.register("svm", kind="sklearn")(lambda **cfg: None)
    assert len(MODELS) == before


@pytest.mark.parametrize(
    "name, cfg, needle",
    [
        ("svm", {"kernel": "cubic"}, "kernel"),
        ("svm", {"gamma_typo": 1}, "valid options"),
        ("cnn6", {"dropout": 1.5}, "dropout"),
        ("mlp", {"depth": 0}, "depth"),
        ("knn", {"k": "ten"}, "k must"),
        ("dupconv", {"dense": (256,)}, "dense"),
    ],
)
def test_bad_config_is_usage_error(name, cfg, needle):
    with pytest.raises(UsageError, match=needle):
        build_model(name, n_classes=3, input_shapes=TINY, **cfg)


def test_bad_input_shapes_are_usage_errors():
    with pytest.raises(UsageError, match="missing"):
        build_model("cnn-mlp", n_classes=3, input_shapes={"spectrogram": (16, 12)})
    with pytest.raises(UsageError, match="n_frames, n_bins"):
        build_model("cnn6", n_classes=3, input_shapes={"spectrogram": (16,)})
    with pytest.raises(UsageError, match="frames"):
        build_model("dupconv", n_classes=3, input_shapes={"spectrogram": (3, 12)})
    with pytest.raises(UsageError, match="n_classes"):
        build_model("cnn6", n_classes=1, input_shapes=TINY)


def test_variants_are_parameters():
    shapes = {"vector": (10,)}
    deep = build_model("mlp", n_classes=3, input_shapes=shapes, depth=6)
    assert sum(isinstance(m, torch.nn.Linear) for m in deep.modules()) == 7
    assert sum(isinstance(m, torch.nn.Linear) for m in build_model("mlp", n_classes=3, input_shapes=shapes).modules()) == 5
    for kernel in ("rbf", "poly", "sigmoid"):
        pipe = build_model("svm", n_classes=3, input_shapes=shapes, kernel=kernel)
        assert pipe.steps[0][0] == "scaler" and pipe.named_steps["clf"].estimator.kernel == kernel
    assert build_model("knn", n_classes=3, input_shapes=shapes, k=15).named_steps["clf"].n_neighbors == 15
    lstm2 = build_model("lstm", n_classes=3, input_shapes=TINY, layers=2)
    assert lstm2.lstm.num_layers == 2


# -- every model: build, forward/backward, overfit, save -> load -----------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_model_trains_and_roundtrips(name, tmp_path):
    slots = _slots(name)
    xs, y = _data(slots)
    shapes = {s: TINY[s] for s in slots}
    path = tmp_path / "model.h5"
    if model_info(name)["kind"] == "sklearn":
        X = _flat(xs, slots)
        pipe = build_model(name, n_classes=N_CLASSES, input_shapes=shapes)
        assert type(pipe.steps[0][1]).__name__ == "StandardScaler"
        pipe.fit(X, y.numpy())
        pred = pipe.predict(X)
        assert (pred == y.numpy()).mean() == 1.0
        with h5py.File(path, "w") as f:
            save_sklearn(f.create_group("model"), pipe)
        with h5py.File(path, "r") as f:
            loaded = load_sklearn(f["model"])
        Xt = _flat(_data(slots, seed=1)[0], slots)
        np.testing.assert_array_equal(loaded.predict(Xt), pipe.predict(Xt))
        if hasattr(pipe, "predict_proba"):
            np.testing.assert_array_equal(loaded.predict_proba(Xt), pipe.predict_proba(Xt))
        return

    cfg = TRAIN_CFG.get(name, {})
    torch.manual_seed(0)
    model = build_model(name, n_classes=N_CLASSES, input_shapes=shapes, **cfg)
    assert set(model.slots) == set(slots)
    logits = model(**xs)
    assert logits.shape == (len(y), N_CLASSES)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    opt = torch.optim.Adam(model.param_groups_l2(), lr=3e-3)
    acc = 0.0
    for step in range(90):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(**xs), y).backward()
        opt.step()
        if step % 3 == 2 and (acc := _torch_acc(model, xs, y)) == 1.0:
            break
    assert acc == 1.0, f"{name} did not fit 24 separable samples (acc {acc:.2f})"

    model.eval()
    xt, _ = _data(slots, seed=1)
    with torch.no_grad():
        before = model(**xt)
    with h5py.File(path, "w") as f:
        save_torch(f.create_group("model"), model)
    torch.manual_seed(123)
    fresh = build_model(name, n_classes=N_CLASSES, input_shapes=shapes, **cfg).eval()
    with h5py.File(path, "r") as f:
        load_torch(f["model"], fresh)
    with torch.no_grad():
        assert torch.equal(fresh(**xt), before)
        # inference preparation (BatchNorm folded into convs, channels_last): same outputs
        fast = for_inference(fresh)
        if name in ("cnn6", "cnn3"):  # conv-BN-ReLU stacks: every BatchNorm folded
            assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
        torch.testing.assert_close(fast(**xt), before, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "name, cfg",
    [
        ("svm", {"probability": True}),
        ("svm", {"kernel": "poly", "multiclass": "ovo"}),
        ("knn", {"k": 3, "metric": "manhattan", "weights": "distance"}),
        ("logreg", {"multiclass": "multinomial"}),
    ],
)
def test_sklearn_variants_roundtrip(name, cfg, tmp_path):
    xs, y = _data(("vector",))
    X = _flat(xs, ("vector",))
    pipe = build_model(name, n_classes=N_CLASSES, input_shapes={"vector": (10,)}, **cfg).fit(X, y.numpy())
    with h5py.File(tmp_path / "s.h5", "w") as f:
        save_sklearn(f.create_group("m"), pipe)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        loaded = load_sklearn(f["m"])
    Xt = _flat(_data(("vector",), seed=2)[0], ("vector",))
    np.testing.assert_array_equal(loaded.predict(Xt), pipe.predict(Xt))
    if cfg.get("probability"):
        np.testing.assert_array_equal(loaded.predict_proba(Xt), pipe.predict_proba(Xt))


# -- sizes and parameter counts --------------------------------------------------------------
def _n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_seed004_parameter_counts_match_paper():
    shapes = {"spectrogram": (128, 256)}  # 128 frames x 256 mel bins
    net1 = build_model("dupconv", n_classes=10, input_shapes=shapes)
    net2 = build_model("rescat", n_classes=10, input_shapes=shapes)
    assert _n_params(net1) == 1_001_162
    assert _n_params(net2) == 857_322
    with torch.no_grad():
        assert net1.eval()(spectrogram=torch.randn(2, 128, 256)).shape == (2, 10)
        assert net2.eval()(spectrogram=torch.randn(2, 128, 256)).shape == (2, 10)


#: every torch model at 128 mel x 130 frames (3 s, hop 512), 93 hand-crafted features, 9 classes
COUNTS_128x130 = {
    "mlp": 221_193,
    "cnn3": 2_293_321,
    "cnn-mlp": 2_061_641,
    "resnet18": 11_174_857,
    "bigru": 496_905,
    "res-bigru": 11_671_753,
    "cnn6": 407_745,
    "lstm": 120_969,
    "dupconv": 870_025,
    "rescat": 726_217,
    "musicnn": 828_898,
}


def test_other_input_sizes_and_counts():
    shapes = {"spectrogram": (130, 128), "vector": (93,)}
    counts = {}
    for name in list_models():
        if model_info(name)["kind"] != "torch":
            continue
        slots = _slots(name)
        m = build_model(name, n_classes=9, input_shapes={s: shapes[s] for s in slots}).eval()
        with torch.no_grad():
            out = m(**{s: torch.randn(1, *shapes[s]) for s in slots})
        assert out.shape == (1, 9)
        counts[name] = _n_params(m)
    assert counts == COUNTS_128x130


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (5, 7)])
def test_cnns_accept_tiny_inputs(shape):
    for name in ("cnn6", "cnn3", "resnet18", "cnn-mlp", "bigru", "lstm"):
        shapes = {"spectrogram": shape, "vector": (4,)}
        slots = _slots(name)
        m = build_model(name, n_classes=2, input_shapes={s: shapes[s] for s in slots}).eval()
        with torch.no_grad():
            assert m(**{s: torch.randn(2, *shapes[s]) for s in slots}).shape == (2, 2)


# -- L2 exposure -----------------------------------------------------------------------------
def test_per_layer_l2_for_dupconv():
    m = build_model("dupconv", n_classes=3, input_shapes=TINY)
    assert m.l2_penalties == {"conv1.weight": 0.02, "conv2.1.weight": 0.01, "conv3.1.weight": 0.01, "conv4.1.weight": 0.01}
    groups = m.param_groups_l2()
    by_wd = {g["weight_decay"]: set(g["names"]) for g in groups}
    assert by_wd[0.04] == {"conv1.weight"}
    assert by_wd[0.02] == {"conv2.1.weight", "conv3.1.weight", "conv4.1.weight"}
    assert "head.0.weight" in by_wd[0.0] and "conv1.bias" in by_wd[0.0]
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))
    params = dict(m.named_parameters())
    manual = sum(lam * params[n].pow(2).sum() for n, lam in m.l2_penalties.items())
    assert torch.allclose(m.l2_penalty(), manual)
    torch.optim.SGD(groups, lr=0.1)  # valid optimizer groups


def test_mlp_weight_decay_is_exposed():
    m = build_model("mlp", n_classes=3, input_shapes={"vector": (10,)}, weight_decay=0.01)
    groups = {g["weight_decay"]: g["names"] for g in m.param_groups_l2()}
    assert all(n.endswith("weight") for n in groups[0.01]) and len(groups[0.01]) == 5
    assert build_model("cnn6", n_classes=3, input_shapes=TINY).l2_penalties == {}


# -- persistence edge cases ------------------------------------------------------------------
def test_torch_dtypes_preserved(tmp_path):
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    m[0].half()
    m[1].weight.data = m[1].weight.data.to(torch.bfloat16)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        save_torch(f.create_group("m"), m)
    with h5py.File(tmp_path / "d.h5", "r") as f:
        state = load_torch_state(f["m"])
    ref = m.state_dict()
    assert list(state) == list(ref)
    for k in ref:
        assert state[k].dtype == ref[k].dtype and torch.equal(state[k], ref[k]), k
    assert state["1.num_batches_tracked"].dtype == torch.int64 and state["1.num_batches_tracked"].dim() == 0


def test_torch_names_with_slash_are_escaped(tmp_path):
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("a/b%c", torch.arange(3))

    with h5py.File(tmp_path / "o.h5", "w") as f:
        save_torch(f.create_group("m"), Odd())
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert torch.equal(load_torch_state(f["m"])["a/b%c"], torch.arange(3))


def _saved_torch(tmp_path):
    m = build_model("mlp", n_classes=3, input_shapes={"vector": (10,)})
    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        save_torch(f.create_group("m"), m)
    return path, m


def _replace_bias(g, data: np.ndarray) -> None:
    """Replace the stored ``out.bias`` by ``data``, still declared float32 of shape (3,)."""
    del g["out.bias"]
    g.create_dataset("out.bias", data=data)
    g["out.bias"].attrs["torch_dtype"] = "float32"
    g["out.bias"].attrs["shape"] = [3]


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda g: g.__delitem__("out.bias"), "missing dataset"),
        (lambda g: _replace_bias(g, np.zeros(3, np.int32)), "stored as int32"),
        (lambda g: _replace_bias(g, np.zeros(5, np.float32)), "shape"),
        (lambda g: g.attrs.__setitem__("format", "sklearn-skops"), "expected 'torch-state-dict'"),
        (lambda g: g.attrs.__delitem__("keys"), "missing attribute 'keys'"),
        (lambda g: g.attrs.__setitem__("keys", "{not json"), "not valid JSON"),
        (lambda g: g.create_dataset("intruder", data=np.zeros(2)), "unexpected entries"),
        (lambda g: g.attrs.__setitem__("format_version", 99), "format_version"),
    ],
)
def test_malformed_torch_group_is_artifact_error(tmp_path, damage, needle):
    path, _ = _saved_torch(tmp_path)
    with h5py.File(path, "a") as f:
        damage(f["m"])
    with h5py.File(path, "r") as f, pytest.raises(ArtifactError, match=needle):
        load_torch_state(f["m"])


def test_state_that_does_not_fit_model_is_artifact_error(tmp_path):
    path, _ = _saved_torch(tmp_path)
    other = build_model("mlp", n_classes=4, input_shapes={"vector": (10,)})
    with h5py.File(path, "r") as f, pytest.raises(ArtifactError, match="shape"):
        load_torch(f["m"], other)
    with h5py.File(path, "r") as f, pytest.raises(ArtifactError, match="missing"):
        load_torch(f["m"], build_model("mlp", n_classes=3, input_shapes={"vector": (10,)}, depth=5))


def test_malformed_sklearn_group_is_artifact_error(tmp_path):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("empty")
        g.attrs["format"], g.attrs["format_version"] = "sklearn-skops", 1
        g = f.create_group("wrongtype")
        g.attrs["format"], g.attrs["format_version"] = "sklearn-skops", 1
        g.create_dataset("skops", data=np.zeros(4, np.float64))
        f.create_group("untagged")
    with h5py.File(path, "r") as f:
        with pytest.raises(ArtifactError, match="missing dataset 'skops'"):
            load_sklearn(f["empty"])
        with pytest.raises(ArtifactError, match="uint8"):
            load_sklearn(f["wrongtype"])
        with pytest.raises(ArtifactError, match="missing attribute 'format'"):
            load_sklearn(f["untagged"])


class _Evil:
    """Unpickling this creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_is_never_executed(tmp_path):
    # sanity: the payload IS live when unpickled
    live = tmp_path / "live-marker"
    pickle.loads(pickle.dumps(_Evil(live))).close()
    assert live.exists()

    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(marker))
    path = tmp_path / "evil.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("sk")  # looks like a sklearn model, holds a pickle
        g.attrs["format"], g.attrs["format_version"] = "sklearn-skops", 1
        g.create_dataset("skops", data=np.frombuffer(payload, np.uint8))
        g = f.create_group("sk_bytes")  # opaque bytes dataset
        g.attrs["format"], g.attrs["format_version"] = "sklearn-skops", 1
        g.create_dataset("skops", data=np.void(payload))
        g = f.create_group("pt")  # looks like a torch state dict, holds a pickle
        g.attrs["format"], g.attrs["format_version"] = "torch-state-dict", 1
        g.attrs["keys"] = '["weight"]'
        ds = g.create_dataset("weight", data=np.void(payload))
        ds.attrs["torch_dtype"], ds.attrs["shape"] = "float32", []
        g = f.create_group("pt_bytes")
        g.attrs["format"], g.attrs["format_version"] = "torch-state-dict", 1
        g.attrs["keys"] = '["weight"]'
        ds = g.create_dataset("weight", data=np.bytes_(payload))  # fixed-length bytes
        ds.attrs["torch_dtype"], ds.attrs["shape"] = "uint8", [len(payload)]
        g = f.create_group("pt_uint8")  # plain uint8 array: read as numbers, never unpickled
        g.attrs["format"], g.attrs["format_version"] = "torch-state-dict", 1
        g.attrs["keys"] = '["weight"]'
        ds = g.create_dataset("weight", data=np.frombuffer(payload, np.uint8))
        ds.attrs["torch_dtype"], ds.attrs["shape"] = "uint8", [len(payload)]
    with h5py.File(path, "r") as f:
        for name in ("sk", "sk_bytes"):
            with pytest.raises(ArtifactError):
                load_sklearn(f[name])
        for name in ("pt", "pt_bytes"):
            with pytest.raises(ArtifactError, match="stored as"):
                load_torch_state(f[name])
        state = load_torch_state(f["pt_uint8"])
        assert state["weight"].dtype == torch.uint8 and bytes(state["weight"].numpy()) == payload
        with pytest.raises(ArtifactError, match="does not fit"):
            load_torch(f["pt_uint8"], build_model("mlp", n_classes=3, input_shapes={"vector": (10,)}))
    assert not marker.exists()
