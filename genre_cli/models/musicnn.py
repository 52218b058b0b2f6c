"""musicnn: the musically motivated CNN of Pons & Serra (2019), in torch.

J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music audio
tagging", ISMIR 2019 late-breaking/demo; architecture from J. Pons et al., "End-to-end
learning for music audio tagging at scale", ISMIR 2018. Our own torch code, written from the
paper and the authors' ISC-licensed TensorFlow-1 implementation (``musicnn`` 0.1.0), whose
trained MSD and MagnaTagATune weights :mod:`genre_cli.pretrained` converts and ships.

Input: slot ``spectrogram`` ``(batch, n_frames, n_mels)`` — for the pretrained weights the
musicnn log-mel patches of :func:`genre_cli.pretrained.preprocess.musicnn_input`
(16 kHz, 96 bands, ``log10(10000 x + 1)``, 187 frames = 3 s). Any ``n_frames >= 1`` runs
(every layer keeps the time length; the back-end pools over time).

Layers (``c = frontend_scale``, TensorFlow layer names of the checkpoint in brackets)::

    input BatchNorm (one scalar mean/var/gamma/beta)                          [batch_normalization]
    front-end, five branches on the normalised input, each conv -> ReLU -> BatchNorm -> max over
    all remaining frequency positions, concatenated along channels (561 for c = 1.6):
      timbral  int(128c) filters, 7 x int(0.4 n_mels), time zero-padded 3 + 3   [conv2d]
      timbral  int(128c) filters, 7 x int(0.7 n_mels), time zero-padded 3 + 3   [conv2d_1]
      temporal int(32c) filters, 128 x 1, 'same' (TF: 63 before, 64 after)      [conv2d_2]
      temporal int(32c) filters,  64 x 1, 'same' (31 / 32)                      [conv2d_3]
      temporal int(32c) filters,  32 x 1, 'same' (15 / 16)                      [conv2d_4]
    mid-end, three 7-frame convolutions over all channels (zero-padded 3 + 3), each
      conv -> ReLU -> BatchNorm; the 2nd and 3rd add their input (residual)     [conv2d_5..7]
    dense connection: front-end (561) + the three mid-end outputs -> 753 channels
    back-end: max and mean over time, interleaved per channel (max_0, mean_0, max_1, ...) ->
      BatchNorm -> dropout 0.5 -> dense ``backend_units`` -> ReLU -> BatchNorm (the
      *penultimate* embedding) -> dropout 0.5 -> dense ``n_classes`` (logits)  [dense, dense_1]

BatchNorm epsilon is TensorFlow's default 1e-3. The taggers' outputs are **independent
sigmoids** (multi-label tag likelihoods), not a softmax: :attr:`Musicnn.output` says which.
With the MSD/MTT settings the network holds 792,079 values (weights and BatchNorm statistics).

Inference: :meth:`Musicnn.for_inference` (called by :func:`genre_cli.models.base.for_inference`)
switches the front-end to a faster, equivalent computation (see :class:`_FastFrontend`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genre_cli.errors import UsageError
from genre_cli.models import MODELS
from genre_cli.models.base import GenreModule, check_pos_int, check_prob

#: TensorFlow's BatchNormalization epsilon (the checkpoints' layers use the default).
BN_EPS = 1e-3
#: Temporal kernel lengths in frames (128, 64, 32 frames = 2.0, 1.0, 0.5 s at hop 256 / 16 kHz).
TEMPORAL_KERNELS = (128, 64, 32)
#: Timbral kernels: 7 frames x this fraction of the mel bands (``int(0.4 * 96) = 38``, 67).
TIMBRAL_FRACTIONS = (0.4, 0.7)
TIMBRAL_FRAMES = 7
MIDEND_KERNEL = 7
#: Intermediate outputs :meth:`Musicnn.taps` can return (names of the original extractor,
#: plus ``logits`` and ``likelihoods``).
TAPS = ("timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate", "logits", "likelihoods")


def tf_same_padding(kernel: int) -> tuple[int, int]:
    """TensorFlow ``padding='same'`` at stride 1: ``(before, after)``, the extra one after."""
    total = kernel - 1
    return total // 2, total - total // 2


class FreqMaxBlock(nn.Module):
    """Front-end branch: time zero-padding -> ``Conv2d(1, filters, (kt, kf))`` -> ReLU ->
    BatchNorm -> max over all frequency positions.

    Input ``(batch, 1, n_frames, n_mels)`` (time is the image height); output
    ``(batch, filters, n_frames)``.
    """

    def __init__(self, filters: int, kt: int, kf: int, pad: tuple[int, int]):
        super().__init__()
        self.pad = tuple(pad)
        self.conv = nn.Conv2d(1, filters, (kt, kf))
        self.bn = nn.BatchNorm2d(filters, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(F.relu(self.conv(F.pad(x, (0, 0, *self.pad)))))
        return y.amax(dim=3)


class MidendLayer(nn.Module):
    """``Conv1d(c_in, c_out, 7)`` over time (zero-padded 3 + 3) -> ReLU -> BatchNorm.

    (The original is a 2-D convolution whose kernel spans all channels; identical.)
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, MIDEND_KERNEL, padding=MIDEND_KERNEL // 2)
        self.bn = nn.BatchNorm1d(c_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class Musicnn(GenreModule):
    """The musicnn tagger (see the module docstring for the layers).

    Parameters
    ----------
    n_classes : int
        Output units (50 tags for the pretrained MSD / MTT taggers).
    n_mels : int >= 3
        Mel bands of the input (96 for the pretrained weights); sets the timbral kernels'
        heights ``int(0.4 n_mels)``, ``int(0.7 n_mels)``.
    frontend_scale : float
        Front-end width: ``int(128 s)`` timbral and ``int(32 s)`` temporal filters per branch
        (1.6 -> 204 and 51).
    midend_filters : int
        Filters of each mid-end layer (64; the authors' unreleased "big" MSD model: 512).
    backend_units : int
        Width of the penultimate dense layer, i.e. of the embedding (200; "big": 500).
    dropout : float
        Back-end dropout rate (0.5), active in training mode only.
    output : {"sigmoid", "softmax"}
        How the logits are meant to be read: ``"sigmoid"`` for the multi-label taggers
        (each tag an independent likelihood), ``"softmax"`` for a single-label classifier
        trained with cross-entropy.

    Attributes
    ----------
    output : str
        ``"sigmoid"`` or ``"softmax"`` (see above); :meth:`likelihoods` applies it.
    embedding_dim : int
        Size of the penultimate embedding (``backend_units``).
    """

    slots = ("spectrogram",)

    def __init__(
        self,
        *,
        n_classes: int = 50,
        n_mels: int = 96,
        frontend_scale: float = 1.6,
        midend_filters: int = 64,
        backend_units: int = 200,
        dropout: float = 0.5,
        output: str = "sigmoid",
    ):
        super().__init__()
        if output not in ("sigmoid", "softmax"):
            raise UsageError(f"musicnn output must be 'sigmoid' or 'softmax', got {output!r}")
        check_pos_int("n_classes", n_classes)
        check_pos_int("n_mels", n_mels, minimum=3)
        check_pos_int("midend_filters", midend_filters)
        check_pos_int("backend_units", backend_units)
        check_prob("dropout", dropout)
        if not isinstance(frontend_scale, (int, float)) or int(32 * frontend_scale) < 1:
            raise UsageError(f"frontend_scale must be a number >= 1/32, got {frontend_scale!r}")
        self.output = output
        self.config = {
            "n_classes": n_classes,
            "n_mels": n_mels,
            "frontend_scale": float(frontend_scale),
            "midend_filters": midend_filters,
            "backend_units": backend_units,
            "dropout": dropout,
        }
        n_timbral, n_temporal = int(frontend_scale * 128), int(frontend_scale * 32)
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        pad = (TIMBRAL_FRAMES // 2, TIMBRAL_FRAMES // 2)
        self.timbral = nn.ModuleList(FreqMaxBlock(n_timbral, TIMBRAL_FRAMES, int(f * n_mels), pad) for f in TIMBRAL_FRACTIONS)
        self.temporal = nn.ModuleList(FreqMaxBlock(n_temporal, k, 1, tf_same_padding(k)) for k in TEMPORAL_KERNELS)
        n_front = len(TIMBRAL_FRACTIONS) * n_timbral + len(TEMPORAL_KERNELS) * n_temporal
        self.midend = nn.ModuleList(
            [MidendLayer(n_front, midend_filters), MidendLayer(midend_filters, midend_filters), MidendLayer(midend_filters, midend_filters)]
        )
        n_pool = 2 * (n_front + 3 * midend_filters)
        self.pool_bn = nn.BatchNorm1d(n_pool, eps=BN_EPS)
        self.dense = nn.Linear(n_pool, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, eps=BN_EPS)
        self.out = nn.Linear(backend_units, n_classes)
        self.drop = nn.Dropout(dropout)
        self.embedding_dim = backend_units
        self._fast: _FastFrontend | None = None

    # -- the network, piece by piece --------------------------------------------------------
    def frontend(self, spectrogram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(timbral, temporal)`` feature maps ``(batch, channels, n_frames)`` (408 and 153)."""
        if spectrogram.dim() != 3:
            raise ValueError(f"musicnn expects (batch, n_frames, n_mels) patches, got shape {tuple(spectrogram.shape)}")
        if self._fast is not None and not self.training:
            return self._fast(spectrogram)
        x = self.input_bn(spectrogram.unsqueeze(1))
        timbral = torch.cat([b(x) for b in self.timbral], dim=1)
        temporal = torch.cat([b(x) for b in self.temporal], dim=1)
        return timbral, temporal

    def taps(self, spectrogram: torch.Tensor, names: tuple[str, ...] = ("penultimate", "logits")) -> dict[str, torch.Tensor]:
        """Intermediate outputs by name (see :data:`TAPS`), as the original extractor's features.

        Shapes for a ``(batch, T, 96)`` input with the pretrained settings: ``timbral``
        ``(batch, T, 408)``, ``temporal`` ``(batch, T, 153)``, ``cnn1``/``cnn2``/``cnn3``
        ``(batch, T, 64)``, ``mean_pool``/``max_pool`` ``(batch, 753)``, ``penultimate``
        ``(batch, 200)``, ``logits`` and ``likelihoods`` ``(batch, n_classes)``.
        """
        unknown = sorted(set(names) - set(TAPS))
        if unknown:
            raise UsageError(f"unknown musicnn output(s) {unknown}; valid: {', '.join(TAPS)}")
        timbral, temporal = self.frontend(spectrogram)
        front = torch.cat([timbral, temporal], dim=1)
        m1 = self.midend[0](front)
        m2 = self.midend[1](m1) + m1
        m3 = self.midend[2](m2) + m2
        feats = torch.cat([front, m1, m2, m3], dim=1)  # (batch, 753, T)
        max_pool, mean_pool = feats.amax(dim=2), feats.mean(dim=2)
        flat = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TF's concat on a last axis, flattened
        pen = self.dense_bn(F.relu(self.dense(self.drop(self.pool_bn(flat)))))
        logits = self.out(self.drop(pen))
        got = {
            "timbral": timbral,
            "temporal": temporal,
            "cnn1": m1,
            "cnn2": m2,
            "cnn3": m3,
            "mean_pool": mean_pool,
            "max_pool": max_pool,
            "penultimate": pen,
            "logits": logits,
        }
        out = {}
        for n in names:
            if n == "likelihoods":
                out[n] = self.likelihoods_from(logits)
            elif got[n].dim() == 3:
                out[n] = got[n].transpose(1, 2)  # (batch, T, channels), as the original
            else:
                out[n] = got[n]
        return out

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, n_classes)`` of ``(batch, n_frames, n_mels)`` patches."""
        return self.taps(spectrogram, ("logits",))["logits"]

    def embed(self, spectrogram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(penultimate, likelihoods)``: the ``(batch, backend_units)`` embedding and the
        ``(batch, n_classes)`` outputs read as :attr:`output` says (sigmoid or softmax)."""
        t = self.taps(spectrogram, ("penultimate", "logits"))
        return t["penultimate"], self.likelihoods_from(t["logits"])

    def likelihoods_from(self, logits: torch.Tensor) -> torch.Tensor:
        """Sigmoid (multi-label taggers) or softmax of ``logits``, per :attr:`output`."""
        return torch.sigmoid(logits) if self.output == "sigmoid" else torch.softmax(logits, dim=1)

    def macs(self, n_frames: int = 187) -> int:
        """Multiply-accumulates of one forward pass over ``n_frames`` frames (convolutions and
        dense layers; the front-end is ~96 % of it: 1.40 G for a 3-s patch with the pretrained
        settings)."""
        n_mels = self.config["n_mels"]
        total = 0
        for b in (*self.timbral, *self.temporal):
            kt, kf = b.conv.kernel_size
            total += b.conv.out_channels * n_frames * (n_mels - kf + 1) * kt * kf
        for layer in self.midend:
            total += layer.conv.out_channels * n_frames * layer.conv.in_channels * layer.conv.kernel_size[0]
        return total + self.dense.in_features * self.dense.out_features + self.out.in_features * self.out.out_features

    # -- inference ---------------------------------------------------------------------------
    def for_inference(self) -> Musicnn:
        """Eval mode with the fast front-end (:class:`_FastFrontend`); returns ``self``.

        The parameters and ``state_dict`` are untouched; switching back to training mode
        uses the plain layers again (the fast path is only taken in eval mode).
        """
        self.eval()
        self._fast = _FastFrontend(self)
        return self

    def train(self, mode: bool = True) -> Musicnn:
        if mode:
            self._fast = None  # derived from the parameters: stale once they train
        return super().train(mode)


class _FastFrontend:
    """The front-end of an eval-mode :class:`Musicnn`, computed with fewer passes over memory.

    Each branch is ``max_f BN(ReLU(conv(x) + b))`` with a per-channel BatchNorm
    ``s * r + t``. ReLU and the affine map are monotone per channel, so the max over frequency
    can be taken *before* them: ``max_f(s r_f + t) = s max_f r_f + t`` when ``s >= 0`` and
    ``s min_f r_f + t`` when ``s < 0`` (the checkpoints have many negative BatchNorm gains),
    with ``min_f ReLU(z_f) = ReLU(-max_f(-z_f))``. So the convolution weights and bias are
    multiplied by ``sign(s)`` (exact), the convolution output is max-pooled over frequency
    right away, and sign, ReLU and BatchNorm touch only the pooled ``(batch, channels, T)``
    map — no ReLU / BatchNorm pass over the large ``(batch, channels, T, F')`` maps.

    On CPU with oneDNN (``torch.backends.mkldnn``), the convolutions and the frequency
    max-pool run on oneDNN's blocked tensors (``to_mkldnn``): the big convolution output is
    never reordered to a dense torch layout, only the pooled map is. The input is laid out
    frequency x time (frequency as the image height), and at most :attr:`chunk` patches go
    through at a time (larger batches spill the ~9 MB per-patch conv outputs out of cache and
    run slower). Elsewhere (CUDA, builds without oneDNN) dense convolutions are used.

    Results equal the plain layers' up to float rounding of the convolutions (tested;
    ~1e-5 on front-end values of ~50).
    """

    #: Patches per oneDNN call (1-2 measured fastest on a 2-core AVX-512 CPU).
    chunk = 2

    def __init__(self, model: Musicnn):
        with torch.no_grad():
            bn = model.input_bn
            a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            self.in_scale, self.in_shift = a.clone(), (bn.bias - bn.running_mean * a).clone()
            # (conv weight in frequency x time layout, bias, time padding) per branch; then
            # (sign, scale, shift) of all branches of a kind, applied after the pool
            self.timbral, self.timbral_post = self._branches(model.timbral)
            self.temporal, self.temporal_post = self._branches(model.temporal)
            dev = model.input_bn.weight.device
            self.mkldnn = dev.type == "cpu" and torch.backends.mkldnn.is_available() and self._to_mkldnn()

    @staticmethod
    def _branches(blocks) -> tuple[list, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        convs, post = [], []
        for block in blocks:
            bn = block.bn
            s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            t = bn.bias - bn.running_mean * s
            sign = torch.where(s < 0, -1.0, 1.0)
            w = (block.conv.weight * sign[:, None, None, None]).transpose(2, 3).contiguous()  # (C, 1, kf, kt)
            convs.append([w, (block.conv.bias * sign).contiguous(), block.pad])
            post.append((sign, s, t))
        return convs, tuple(torch.cat([p[i] for p in post])[:, None] for i in range(3))

    def _to_mkldnn(self) -> bool:
        """Keep oneDNN copies of the convolution weights; False (dense path) if that fails here."""
        one, zero = [1, 1], [0, 0]
        reorder = getattr(torch._C._nn, "mkldnn_reorder_conv2d_weight", None)  # else reordered per call
        try:
            for conv in (*self.timbral, *self.temporal):
                w, b, _pad = conv[:3]
                wm = w.to_mkldnn()
                conv[3:] = [reorder(wm, zero, one, one, 1) if reorder else wm, b.to_mkldnn()]
            self.mkldnn = True
            self(torch.zeros(1, 8, 96))
        except (RuntimeError, TypeError, AttributeError):  # a build or CPU without these oneDNN ops
            for conv in (*self.timbral, *self.temporal):
                del conv[3:]
            return False
        return True

    def _pooled(self, x: torch.Tensor, convs: list) -> torch.Tensor:
        """``max_f conv(x)`` for each branch, concatenated: ``(batch, channels, T)``."""
        out = []
        for w, b, pad, *mk in convs:
            xp = F.pad(x, pad)
            if self.mkldnn:
                y = torch.mkldnn_convolution(xp.contiguous().to_mkldnn(), mk[0], mk[1], [0, 0], [1, 1], [1, 1], 1)
                out.append(F.max_pool2d(y, (y.shape[2], 1)).to_dense()[:, :, 0])
            else:
                out.append(F.conv2d(xp, w, b).amax(dim=2))
        return torch.cat(out, dim=1)

    @staticmethod
    def _finish(pooled: torch.Tensor, post: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        sign, s, t = post
        return torch.relu(pooled * sign) * s + t

    def __call__(self, spectrogram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mkldnn and len(spectrogram) > self.chunk:
            parts = [self(spectrogram[i : i + self.chunk]) for i in range(0, len(spectrogram), self.chunk)]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        x = (spectrogram.float() * self.in_scale + self.in_shift).transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        return (
            self._finish(self._pooled(x, self.timbral), self.timbral_post),
            self._finish(self._pooled(x, self.temporal), self.temporal_post),
        )


@MODELS.register(
    "musicnn",
    kind="torch",
    inputs=("spectrogram",),
    source="Pons & Serra 2019 (musicnn)",
    features={"spectrogram": "musicnn"},
    description="Musically motivated CNN: timbral (7x38, 7x67) + temporal (128/64/32x1) front-end, residual "
    "dense mid-end, max+mean pooled back-end; pretrained MSD/MTT taggers via genre_cli.pretrained.",
)
def musicnn(
    *,
    n_classes: int,
    input_shapes: dict[str, tuple[int, ...]],
    frontend_scale: float = 1.6,
    midend_filters: int = 64,
    backend_units: int = 200,
    dropout: float = 0.5,
) -> Musicnn:
    """A freshly initialised musicnn for ``n_classes`` classes (``output="softmax"``: the
    trainer's cross-entropy); ``n_mels`` comes from ``input_shapes["spectrogram"][1]``.

    The pretrained taggers are loaded with :func:`genre_cli.pretrained.load_musicnn`
    (``"msd"`` or ``"mtt"``: 50 sigmoid tag outputs, settings as the defaults here).
    """
    n_mels = int(input_shapes["spectrogram"][1])
    return Musicnn(
        n_classes=n_classes,
        n_mels=n_mels,
        frontend_scale=frontend_scale,
        midend_filters=midend_filters,
        backend_units=backend_units,
        dropout=dropout,
        output="softmax",
    )
