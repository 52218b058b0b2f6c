"""Classical baselines (seeds 000, 001, 003): sklearn pipelines ``StandardScaler -> classifier``.

Input slot ``"vector"``: a ``(batch, features)`` array. Pun & Nazirkhanova 2020 feeds its 93 hand-crafted
features; F. Zhang 2022 feeds flattened STFT / mel spectrograms to KNN and SVM (the caller flattens).
The scaler is always inside the pipeline, so a persisted model carries its own normalisation.

sklearn is imported inside the builders so that importing this module stays cheap.
"""

from __future__ import annotations

from genre_cli.errors import UsageError
from genre_cli.models import MODELS
from genre_cli.models.base import check_pos_int
from genre_cli.papers import PUN_2020, VERMA_2022, ZHANG_2022

_VEC = ("vector",)


def _pipeline(clf):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scaler", StandardScaler()), ("clf", clf)])


def _check_choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _check_pos_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UsageError(f"{name} must be a positive number, got {value!r}")
    return float(value)


@MODELS.register(
    "logreg",
    kind="sklearn",
    inputs=_VEC,
    source=PUN_2020.short,
    features={"vector": "handcrafted"},
    description="Logistic regression; one-vs-rest, one binary classifier per genre (Pun & Nazirkhanova 2020).",
)
def logreg(*, multiclass: str = "ovr", C: float = 1.0, max_iter: int = 2000):
    """Pun & Nazirkhanova 2020: "10 different classifiers: one for each genre", predict the most probable.

    ``multiclass="ovr"`` (the paper) wraps a binary ``LogisticRegression`` in
    ``OneVsRestClassifier``; ``"multinomial"`` uses one softmax model. The paper is silent on
    regularisation: sklearn's default L2 with ``C=1.0``; ``max_iter=2000`` (ours) so lbfgs converges
    on standardised features.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    _check_choice("multiclass", multiclass, ("ovr", "multinomial"))
    base = LogisticRegression(C=_check_pos_float("C", C), max_iter=check_pos_int("max_iter", max_iter))
    return _pipeline(OneVsRestClassifier(base) if multiclass == "ovr" else base)


@MODELS.register(
    "svm",
    kind="sklearn",
    inputs=_VEC,
    source=f"{PUN_2020.short} / {ZHANG_2022.short}",
    features={"vector": "handcrafted"},
    description="Support vector machine, RBF kernel by default (poly, sigmoid, linear selectable).",
)
def svm(
    *,
    kernel: str = "rbf",
    C: float = 1.0,
    gamma: str | float = "scale",
    degree: int = 3,
    multiclass: str = "ovr",
    probability: bool = False,
):
    """Pun & Nazirkhanova 2020: one SVM per genre (one-vs-rest); polynomial, RBF and sigmoid kernels were tried,
    RBF was best (65 %). F. Zhang 2022 uses an SVM on flattened spectrograms.

    Silent in the papers, our choices: ``C=1.0``, ``gamma="scale"``, ``degree=3`` (sklearn
    defaults). ``multiclass="ovr"`` wraps ``SVC`` in ``OneVsRestClassifier`` as Pun & Nazirkhanova 2020 describes;
    ``"ovo"`` is libsvm's native one-vs-one. ``probability=True`` wraps the classifier in
    ``CalibratedClassifierCV(method="sigmoid", ensemble=False)`` (Platt scaling, 5-fold internal CV;
    needs >= 5 samples per class) for ``predict_proba`` — e.g. probability averaging over clips.
    """
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    _check_choice("kernel", kernel, ("rbf", "poly", "sigmoid", "linear"))
    _check_choice("multiclass", multiclass, ("ovr", "ovo"))
    if not (gamma in ("scale", "auto") or (isinstance(gamma, (int, float)) and not isinstance(gamma, bool) and gamma > 0)):
        raise UsageError(f"gamma must be 'scale', 'auto' or a positive number, got {gamma!r}")
    base = SVC(kernel=kernel, C=_check_pos_float("C", C), gamma=gamma, degree=check_pos_int("degree", degree))
    clf = OneVsRestClassifier(base) if multiclass == "ovr" else base
    if probability:  # SVC(probability=True) is deprecated since sklearn 1.9; this is its replacement
        from sklearn.calibration import CalibratedClassifierCV

        clf = CalibratedClassifierCV(clf, method="sigmoid", ensemble=False)
    return _pipeline(clf)


@MODELS.register(
    "naive-bayes",
    kind="sklearn",
    inputs=_VEC,
    source=PUN_2020.short,
    features={"vector": "handcrafted"},
    description="Gaussian naive Bayes on all features, one multi-class model (Pun & Nazirkhanova 2020).",
)
def naive_bayes(*, var_smoothing: float = 1e-9):
    """Pun & Nazirkhanova 2020: one naive Bayes model over the 93 features (64 %). The paper does not name the
    likelihood; features are continuous, so Gaussian NB (sklearn default smoothing)."""
    from sklearn.naive_bayes import GaussianNB

    return _pipeline(GaussianNB(var_smoothing=_check_pos_float("var_smoothing", var_smoothing)))


@MODELS.register(
    "knn",
    kind="sklearn",
    inputs=_VEC,
    source=f"{ZHANG_2022.short} / {VERMA_2022.short}",
    features={"vector": "handcrafted"},
    description="k-nearest neighbours; k=10 by default (F. Zhang 2022 tried 10, 15, 20).",
)
def knn(*, k: int = 10, weights: str = "uniform", metric: str = "euclidean"):
    """F. Zhang 2022: KNN with n = 10 / 15 / 20 on spectrograms, n = 10 best (0.67 STFT, 0.66 mel), hence
    the default. Verma et al. 2022: KNN with Euclidean distance and majority vote — ``weights="uniform"``,
    ``metric="euclidean"``."""
    from sklearn.neighbors import KNeighborsClassifier

    _check_choice("weights", weights, ("uniform", "distance"))
    _check_choice("metric", metric, ("euclidean", "manhattan", "cosine", "chebyshev"))
    return _pipeline(KNeighborsClassifier(n_neighbors=check_pos_int("k", k), weights=weights, metric=metric))


@MODELS.register(
    "random-forest",
    kind="sklearn",
    inputs=_VEC,
    source=f"{ZHANG_2022.short} (cited baseline)",
    features={"vector": "handcrafted"},
    description="Random forest (F. Zhang's (2022) baseline table, 0.81 from its ref. [7]).",
)
def random_forest(*, n_estimators: int = 200, max_depth: int | None = None, random_state: int = 0):
    """F. Zhang 2022 only cites a random forest result (0.81); no hyper-parameters are given. Ours:
    200 trees, unlimited depth, ``random_state=0`` for reproducibility, single-threaded
    (the scaler is harmless for trees and kept for a uniform pipeline)."""
    from sklearn.ensemble import RandomForestClassifier

    if max_depth is not None:
        check_pos_int("max_depth", max_depth)
    return _pipeline(
        RandomForestClassifier(
            n_estimators=check_pos_int("n_estimators", n_estimators), max_depth=max_depth, random_state=random_state, n_jobs=1
        )
    )
