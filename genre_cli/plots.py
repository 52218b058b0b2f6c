"""PNG plots of evaluation results: confusion matrices and training curves.

matplotlib is imported lazily, and only its object-oriented API with the Agg canvas is
used (no ``pyplot``, no global backend switch), so plotting works headless and from any
thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def confusion_png(cm: np.ndarray, labels: list[str], path: str | Path, *, title: str = "") -> Path:
    """Write a confusion matrix as two panels: counts, and rows normalised to 1.

    Parameters
    ----------
    cm : np.ndarray [shape=(n_classes, n_classes)]
        Counts, rows = true class, columns = predicted class.
    labels : list of str
    path : path-like
        Output PNG.
    title : str
        Figure title (name the model, data, split and level).

    Returns
    -------
    Path
    """
    cm = np.asarray(cm, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    k = len(labels)
    side = max(3.2, 0.55 * k + 1.6)
    fig = _figure(2 * side + 0.8, side + 0.6)
    axes = fig.subplots(1, 2)
    for ax, data, fmt, sub in ((axes[0], cm, "d", "counts"), (axes[1], norm, ".2f", "row-normalised (diagonal = recall)")):
        im = ax.imshow(data, cmap="Blues", vmin=0, vmax=max(float(data.max()), 1e-9) if fmt == "d" else 1.0)
        ax.set_xticks(range(k), labels, rotation=45, ha="right")
        ax.set_yticks(range(k), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(sub, fontsize=10)
        hi = (data.max() if fmt == "d" else 1.0) * 0.6
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    v = data[i, j]
                    ax.text(
                        j,
                        i,
                        format(v, fmt) if (fmt != "d" or v) else "0",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if v > hi else "black",
                    )
        fig.colorbar(im, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path)
    return path


def history_png(history: list[dict[str, Any]], path: str | Path, *, title: str = "") -> Path:
    """Write training curves: losses (left) and accuracies (right) per epoch.

    Parameters
    ----------
    history : list of dict
        Per-epoch records as stored in a model's ``history`` attribute (``epoch``,
        ``loss``, ``train_accuracy``, ``val_loss``, ``val_track_accuracy``, ...): every
        numeric key ending in ``loss`` goes left, every key containing ``accuracy`` right.
    path : path-like
        Output PNG.

    Returns
    -------
    Path
    """
    from matplotlib.ticker import MaxNLocator

    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    keys = sorted({k for h in history for k, v in h.items() if isinstance(v, (int, float)) and k not in ("epoch", "seconds")})
    fig = _figure(10, 4)
    axes = fig.subplots(1, 2)
    for ax, pick, ylabel in (
        (axes[0], lambda k: k.endswith("loss"), "cross-entropy loss"),
        (axes[1], lambda k: "accuracy" in k, "accuracy"),
    ):
        shown = [k for k in keys if pick(k)]
        for key in shown:
            xs = [e for e, h in zip(epochs, history) if key in h]
            ys = [h[key] for h in history if key in h]
            ax.plot(xs, ys, marker="o", markersize=3, label=key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if shown:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not recorded", transform=ax.transAxes, ha="center")
        if ylabel == "accuracy":
            ax.set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path)
    return path
