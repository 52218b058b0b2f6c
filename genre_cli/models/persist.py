"""Placeholder persistence (torch only)."""

import numpy as np


def save_torch(group, module):
    for k, v in module.state_dict().items():
        group.create_dataset(k.replace("/", "|"), data=v.detach().cpu().numpy())


def load_torch_state(group):
    import torch

    out = {}

    def visit(name, obj):
        if hasattr(obj, "shape"):
            out[name.replace("/", ".").replace("|", "/")] = torch.from_numpy(np.asarray(obj[()]))

    group.visititems(visit)
    return out


def save_sklearn(group, pipeline):
    raise NotImplementedError


def load_sklearn(group):
    raise NotImplementedError
