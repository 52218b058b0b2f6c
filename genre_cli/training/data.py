"""A split of a features artifact as batches of (slot -> tensor, labels): in memory or streamed.

:class:`MemoryData` holds the split as tensors (on the GPU when it fits, else pinned host
memory); :class:`StreamData` reads it from HDF5 window by window, for data larger than memory
(:func:`want_stream` decides when ``--stream`` is not given).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from genre_cli.formats.features import Features
from genre_cli.inference import Classifier


class MemoryData:
    """A split held as tensors: on the GPU when it fits, else in pinned host memory (CUDA)."""

    stream = False

    def __init__(self, feats: Features, clf: Classifier, rows: np.ndarray, device):
        import torch

        x = clf.prepare({name: feats.load(name, rows) for name in set(clf.inputs.values())})
        self.x = {s: torch.from_numpy(np.ascontiguousarray(v)) for s, v in x.items()}
        self.y = torch.from_numpy(feats.segments["label"][rows].astype(np.int64))
        self.n, self.device = len(rows), device
        if device.type == "cuda":
            nbytes = sum(v.numel() * v.element_size() for v in self.x.values())
            free, _ = torch.cuda.mem_get_info(device)
            place = (lambda t: t.to(device)) if nbytes < free // 4 else (lambda t: t.pin_memory())
            self.x, self.y = {s: place(v) for s, v in self.x.items()}, place(self.y)

    def order(self, gen) -> Any:
        import torch

        return torch.randperm(self.n, generator=gen)

    def batches(self, order, batch_size: int) -> Iterator[tuple[dict, Any]]:
        on_gpu, pin = self.y.device.type == "cuda", self.device.type == "cuda"
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            if on_gpu:  # resident on the GPU: gather there
                yield {s: v[idx.to(self.y.device)] for s, v in self.x.items()}, self.y[idx.to(self.y.device)]
            elif pin:  # gathered rows are pageable again: pin them so the copy can overlap
                yield {s: v[idx].pin_memory() for s, v in self.x.items()}, self.y[idx].pin_memory()
            else:
                yield {s: v[idx] for s, v in self.x.items()}, self.y[idx]


class StreamData:
    """A split read from HDF5 window by window (a background thread reads the next window).

    Shuffling keeps locality: the order permutes blocks of :data:`BLOCK` consecutive rows (the
    features file's chunk size) and then shuffles within windows of ~16 batches.
    """

    stream = True
    BLOCK = 64

    def __init__(self, feats: Features, clf: Classifier, rows: np.ndarray, device):
        self.feats, self.clf, self.rows, self.n, self.device = feats, clf, rows, len(rows), device
        self.labels = feats.segments["label"][rows].astype(np.int64)
        self.names = sorted(set(clf.inputs.values()))
        self.window = 4096

    def order(self, gen) -> Any:
        import torch

        blocks = torch.arange(self.n).split(self.BLOCK)
        perm = torch.randperm(len(blocks), generator=gen)
        order = torch.cat([blocks[i] for i in perm]) if len(blocks) else torch.zeros(0, dtype=torch.long)
        parts = [w[torch.randperm(len(w), generator=gen)] for w in order.split(self.window)]
        return torch.cat(parts) if parts else order

    def _read(self, pos: np.ndarray) -> tuple[dict, Any]:
        import torch

        srt = np.sort(pos)
        with h5py.File(self.feats.path, "r") as f:
            raw = {name: f["features"][name][self.rows[srt]].astype(np.float32, copy=False) for name in self.names}
        back = np.searchsorted(srt, pos)
        x = self.clf.prepare({k: v[back] for k, v in raw.items()})
        xt = {s: torch.from_numpy(np.ascontiguousarray(v)) for s, v in x.items()}
        yt = torch.from_numpy(self.labels[pos])
        if self.device.type == "cuda":
            xt, yt = {s: v.pin_memory() for s, v in xt.items()}, yt.pin_memory()
        return xt, yt

    def batches(self, order, batch_size: int) -> Iterator[tuple[dict, Any]]:
        from concurrent.futures import ThreadPoolExecutor

        order = np.asarray(order)
        step = max(batch_size, self.window // batch_size * batch_size)
        windows = [order[i : i + step] for i in range(0, len(order), step)]
        with ThreadPoolExecutor(1) as pool:
            nxt = pool.submit(self._read, windows[0]) if windows else None
            for k in range(len(windows)):
                x, y = nxt.result()
                nxt = pool.submit(self._read, windows[k + 1]) if k + 1 < len(windows) else None
                for i in range(0, len(y), batch_size):
                    yield {s: v[i : i + batch_size] for s, v in x.items()}, y[i : i + batch_size]


def make_data(feats: Features, clf: Classifier, rows: np.ndarray, device, stream: bool) -> MemoryData | StreamData:
    """The split ``rows`` of ``feats``, prepared for ``clf``'s inputs."""
    return (StreamData if stream else MemoryData)(feats, clf, rows, device)


def want_stream(stream: bool | None, shapes: dict[str, tuple[int, ...]], n_rows: int) -> bool:
    """``stream`` when given, else whether ``n_rows`` float32 rows of ``shapes`` exceed :func:`stream_threshold`."""
    if stream is not None:
        return bool(stream)
    nbytes = n_rows * sum(4 * math.prod(s) for s in shapes.values())
    return nbytes > stream_threshold()


def stream_threshold() -> int:
    """Bytes of training data above which batches are streamed from HDF5 (``--stream`` auto).

    ``$GENRE_STREAM_BYTES`` if set, else a quarter of physical memory (8 GiB if unknown).
    """
    env = os.environ.get("GENRE_STREAM_BYTES")
    if env:
        return int(float(env))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 8 << 30
