"""Every registered torch model can learn: it overfits a small fixed batch under the default recipe's
optimizer settings (AdamW, the recipe's learning rate and weight decay, the model's own L2).

64 random-but-fixed inputs with random labels (4 classes) can only be fit by memorising them, so
a model that reaches >= 95 % training accuracy within a bounded number of full-batch steps has
working gradients, initialisation, normalisation and optimizer settings. Inputs are small (32
frames x 16 bins, 20-d vectors) to keep the test at a few seconds per model on one CPU thread.
"""

from __future__ import annotations

import pytest
import torch

from genre_cli.models import build_model, list_models, model_info
from genre_cli.training import recipe
from genre_cli.training.loop import make_optimizer

N, N_CLASSES, MAX_STEPS, TARGET = 64, 4, 150, 0.95
SHAPES = {"spectrogram": (32, 16), "vector": (20,)}
# Width options that keep the widest networks quick; they do not change how a model learns.
SMALL = {"resnet18": {"width": 16}, "res-bigru": {"width": 16, "hidden": 32}, "dupconv": {"filters": 64}, "rescat": {"filters": 64}}
TORCH_MODELS = [m for m in list_models() if model_info(m)["kind"] == "torch"]


def _fit(name: str, *, max_steps: int = MAX_STEPS) -> tuple[float, int]:
    """Full-batch steps on a fixed random batch until the training accuracy (eval mode) reaches
    :data:`TARGET`; returns (accuracy, steps)."""
    torch.manual_seed(0)
    info = model_info(name)
    x = {s: torch.randn(N, *SHAPES[s]) for s in info["inputs"]}
    y = torch.arange(N) % N_CLASSES
    y = y[torch.randperm(N)]
    model = build_model(name, n_classes=N_CLASSES, input_shapes={s: SHAPES[s] for s in info["inputs"]}, **SMALL.get(name, {}))
    hp = {k: recipe.RECIPE[k] for k in ("optimizer", "lr", "weight_decay")}
    opt, add_penalty = make_optimizer(model, hp)
    loss_fn = torch.nn.CrossEntropyLoss()
    acc = 0.0
    for step in range(1, max_steps + 1):
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(**x), y)
        (loss + model.l2_penalty() if add_penalty else loss).backward()
        opt.step()
        if step % 10 == 0:
            model.eval()
            with torch.no_grad():
                acc = float((model(**x).argmax(1) == y).float().mean())
            if acc >= TARGET:
                return acc, step
    return acc, max_steps


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_every_torch_model_is_covered():
    assert {"cnn6", "cnn3", "cnn-mlp", "dupconv", "rescat", "lstm", "bigru", "res-bigru", "resnet18", "mlp"} <= set(TORCH_MODELS)


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_model_overfits_a_small_fixed_batch(name):
    acc, steps = _fit(name)
    assert acc >= TARGET, f"{name}: training accuracy {acc:.2f} after {steps} full-batch steps (want >= {TARGET})"


def test_lstm_starts_from_keras_initialisation():
    """The paper's LSTM was a Keras model: forget-gate bias 1, orthogonal recurrent kernels."""
    model = build_model("lstm", n_classes=3, input_shapes={"spectrogram": (10, 8)})
    h = model.lstm.hidden_size
    for layer in range(model.lstm.num_layers):
        b_ih, b_hh = getattr(model.lstm, f"bias_ih_l{layer}"), getattr(model.lstm, f"bias_hh_l{layer}")
        assert torch.all(b_ih[h : 2 * h] == 1) and torch.all(b_ih[:h] == 0) and torch.all(b_hh == 0)
        w = getattr(model.lstm, f"weight_hh_l{layer}")  # (4h, h) with orthonormal columns
        assert torch.allclose(w.T @ w, torch.eye(h), atol=1e-4)
