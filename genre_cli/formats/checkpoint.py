"""The training checkpoint: a sidecar ``<model>.ckpt.h5`` that ``genre train --resume`` continues from.

Written atomically after every epoch (temporary file + ``os.replace``) by rank 0; removed once
the model artifact is in place. No pickle: tensors are datasets (:mod:`genre_cli.models.persist`),
the rest is JSON.

Layout::

    attrs: format ("genre-train-checkpoint"), resume_key (the model's fingerprint without the
           parameters a checkpoint does not depend on), epoch, history (JSON), selector (the
           :class:`~genre_cli.training.averaging.Selector` state, JSON), ema_updates (when averaging),
           scaler (GradScaler state, JSON), numpy_rng (bit generator state, JSON)
    /model                 the weights after ``epoch``
    /ema                   the moving average of the weights (when averaging)
    /best                  the weights kept so far (when any)
    /optimizer/tensors     optimizer state tensors; attrs state (JSON, tensors by name), param_groups
    /rng                   torch RNG states (CPU, generator, each CUDA device)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py

from genre_cli.errors import ArtifactError

FORMAT = "genre-train-checkpoint"


def path_for(out: str | Path) -> Path:
    """The sidecar checkpoint of model artifact ``out``: ``<out>.ckpt.h5``."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt.h5")


class _Holder:
    """Adapter so :func:`persist.save_torch` can store any ``{name: tensor}`` mapping."""

    def __init__(self, state: dict[str, Any]):
        self._state = state

    def state_dict(self) -> dict[str, Any]:
        return self._state


def save(path: Path, key: str, epoch: int, state: dict, model, opt, scaler, gen, np_rng, selector, ema=None) -> None:
    """Write the resumable state atomically (temporary file + ``os.replace``); no pickle."""
    import torch

    from genre_cli.models import persist

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["resume_key"] = key
            f.attrs["epoch"] = epoch
            f.attrs["history"] = json.dumps(state["history"])
            f.attrs["selector"] = json.dumps(selector.state())
            persist.save_torch(f.create_group("model"), model)
            if ema is not None:
                persist.save_torch(f.create_group("ema"), _Holder(ema.state_dict()))
                f.attrs["ema_updates"] = ema.updates
            if state["best_state"] is not None:
                persist.save_torch(f.create_group("best"), _Holder(state["best_state"]))
            sd = opt.state_dict()
            tensors, meta = {}, {}
            for pid, st in sd["state"].items():
                entry = {}
                for k, v in st.items():
                    if torch.is_tensor(v):
                        tensors[f"{pid}.{k}"] = v
                        entry[k] = {"tensor": f"{pid}.{k}"}
                    else:
                        entry[k] = v
                meta[str(pid)] = entry
            og = f.create_group("optimizer")
            persist.save_torch(og.create_group("tensors"), _Holder(tensors))
            og.attrs["state"] = json.dumps(meta)
            og.attrs["param_groups"] = json.dumps(sd["param_groups"])
            f.attrs["scaler"] = json.dumps(scaler.state_dict())
            rng = {"torch": torch.get_rng_state(), "generator": gen.get_state()}
            if torch.cuda.is_available():
                rng |= {f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
            persist.save_torch(f.create_group("rng"), _Holder(rng))
            f.attrs["numpy_rng"] = json.dumps(np_rng.bit_generator.state)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load(path: Path, key: str, model, opt, scaler, gen, np_rng, selector, ema=None) -> dict | None:
    """Restore a checkpoint into the live objects (``selector`` and ``ema`` included); ``None`` when
    it belongs to other settings."""
    import torch

    from genre_cli.models import persist

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise ArtifactError(f"{path}: not a training checkpoint")
            if f.attrs.get("resume_key") != key:
                return None
            persist.load_torch(f["model"], model)
            best = persist.load_torch_state(f["best"]) if "best" in f else None
            tensors = persist.load_torch_state(f["optimizer/tensors"])
            meta = json.loads(f["optimizer"].attrs["state"])
            opt_state = {
                int(pid): {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v for k, v in st.items()}
                for pid, st in meta.items()
            }
            opt.load_state_dict({"state": opt_state, "param_groups": json.loads(f["optimizer"].attrs["param_groups"])})
            scaler.load_state_dict(json.loads(f.attrs["scaler"]))
            rng = persist.load_torch_state(f["rng"])
            torch.set_rng_state(rng["torch"])
            gen.set_state(rng["generator"])
            cuda = [rng[k] for k in sorted((k for k in rng if k.startswith("cuda")), key=lambda k: int(k[4:]))]
            if cuda and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
            np_rng.bit_generator.state = json.loads(f.attrs["numpy_rng"])
            state = {"history": json.loads(f.attrs["history"])}
            selector.load(json.loads(f.attrs["selector"]))
            if ema is not None:
                ema.load_state_dict(persist.load_torch_state(f["ema"]), int(f.attrs["ema_updates"]))
            state["best_state"] = best
            state["epoch"] = int(f.attrs["epoch"])
            return state
    except (OSError, KeyError, ValueError) as exc:
        raise ArtifactError(
            f"{path}: unreadable training checkpoint ({type(exc).__name__}: {exc})", hint="delete it to start over"
        ) from None
