"""How class-specific a system's filters are, for any registered system: MIS and the filter-class
matrix, gate density, localization by gradient maps and CAM, and adversarial detection.

The measures follow Liang et al. (ECCV 2020) and their reference code (hyliang96/CSGCNN):

  pooled features   a layer's activation averaged over space (N, K); a vector layer as it is
  filter layer      where a system's filters are: the layer its class-specific filters live on
                    when it has them, else its deepest spatial layer, else its first layer
  MI matrix         MI[c, k] = MI(feature_k; 1[y = c]) on the test images: the estimate of
                    scikit-learn's ``mutual_info_classif`` (k-nearest-neighbour, nats), as the
                    reference computes it, by sorting each column
  MIS               mean over filters k of max over classes c of MI[c, k]
  filter classes    G (K, C): the CSG gate; the glass-box's class-labelled filters as a one-hot;
                    (for detection, every system also gets the one-hot of each filter's preferred
                    class: the class whose train images activate it most on average; the MI's
                    argmax cannot serve, MI with 1[y = c] being the same for both classes of a
                    binary task)
  gradient map      per image of class y and each of class y's top filters (highest mean pooled
                    activation on the train images of y): the gradient of the filter's pooled
                    activation to the input, L2 over channels, divided by its RMS over pixels,
                    Gaussian-blurred, kept where > 1; IoU with the object mask, averaged over
                    the filters; AP = share of images with IoU >= 0.2
  CAM               Grad-CAM of the filter layer for the true class, bilinearly upsampled, its
                    top 30 % of pixels kept; AP = share of images with IoU >= 0.3 (systems
                    without a spatial map they can differentiate through: not measured)
  object masks      digits (mnist5k, digits): the stroke, pixel > 0.5; lfw_faces: a fixed
                    ellipse centred on the image, semi-axes 0.42 H (vertical) and 0.32 W, on
                    the face images only
  detection         FGSM and PGD (L-inf, eps 0.1, ``jax.grad`` of the cross-entropy) on correctly
                    classified test images; clean vs successful adversarial images scored by
                    1 - r(x), r(x) = sum_k G[k, y_hat] a_k / sum_k a_k, and by a logistic
                    detector on the pooled features (2-fold cross-fitted); ROC AUC (scikit-learn)

The filter classes and CAM come from two optional methods of a system's params,
``class_specific_filters() -> (layer, G)`` and ``class_activation_maps(x, y) -> (N, h, w)``
(the CSG systems have both); the glass-box's one-hot is read off its filter banks here.
"""
from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.analysis import comparison, scoring
from glassjax.core.arrays import pad_rows
from glassjax.core.progress import progress

__all__ = [
    "filter_layer", "pooled_features", "mutual_information", "mis", "filter_classes", "gate_density",
    "object_masks", "top_filters", "preferred_classes", "gradient_maps", "binarise_gradient_maps", "binarise_top",
    "iou", "cam_maps",
    "localization", "fgsm", "pgd", "evidence_ratio", "detection", "evaluate", "run", "headline", "csg_summary", "table_rows",
    "GRADIENT_AP_IOU", "CAM_AP_IOU", "CAM_TOP_RATE", "STROKE_SETS", "FACE_SETS",
]

GRADIENT_AP_IOU = 0.2
CAM_AP_IOU = 0.3
CAM_TOP_RATE = 0.3
STROKE_SETS = ("mnist5k", "digits")
FACE_SETS = ("lfw_faces",)
FACE_ELLIPSE = (0.42, 0.32)  # semi-axes as fractions of H (vertical) and W (horizontal)


# --- features and mutual information --------------------------------------------------------


def _layer_shapes(fitted, image_shape) -> dict:
    return comparison.layer_shapes(fitted, image_shape)  # layer -> ShapeDtypeStruct, in depth order


def filter_layer(fitted, image_shape: Sequence[int]) -> str:
    """Where ``fitted``'s filters are: the layer of its class-specific filters when it has them,
    else its deepest spatial (N, h, w, c) layer, else its first layer."""
    own = _own_filter_classes(fitted, image_shape)
    if own is not None:
        return own[0]
    shapes = _layer_shapes(fitted, image_shape)
    spatial = [name for name, s in shapes.items() if len(s.shape) == 4]
    return spatial[-1] if spatial else next(iter(shapes))


def _pool(a: jax.Array) -> jax.Array:
    return jnp.mean(a, axis=(1, 2)) if a.ndim == 4 else a.reshape(a.shape[0], -1)


@functools.lru_cache(maxsize=32)
def _pooled_fn(system, layer: str):
    # One compiled function per (system, layer); params go in as an argument, not a constant.
    return jax.jit(lambda params, x: _pool(system.features(params, x)[layer]))


def pooled_features(fitted, x: np.ndarray, layer: str, *, batch_size: int = 128) -> np.ndarray:
    """Layer ``layer`` of images x (N, H, W, C), averaged over space when spatial: (N, K) float32.
    Every batch is padded to ``batch_size`` rows, so any N compiles once."""
    fn = _pooled_fn(fitted.system, layer)
    out = []
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start:start + batch_size]
        out.append(np.asarray(fn(fitted.params, pad_rows(chunk, batch_size)))[:chunk.shape[0]])
    return np.concatenate(out).astype(np.float32)


def _knn_mi(x: np.ndarray, labels: np.ndarray, k: int = 3) -> np.ndarray:
    """MI (K,) between each column of x (N, K) and discrete labels (N,), Ross's (2014) k-nearest-
    neighbour estimate: psi(N) - <psi(N_y)> + psi(k) - <psi(m)>, m counting the points of any label
    closer than a point's k-th neighbour of its own label (the point itself included). In one
    dimension a point's k nearest neighbours are among the k before and after it in sorted order,
    so every column is done by sorting, in O(N log N)."""
    from scipy.special import digamma

    n, width = x.shape
    radius = np.zeros((n, width))
    k_of = np.zeros(n)
    count_of = np.zeros(n)
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        if rows.size < 2:
            continue  # a label seen once has no neighbour; scikit-learn leaves such points out
        kl = min(k, rows.size - 1)
        order = np.argsort(x[rows], axis=0, kind="stable")
        xs = np.take_along_axis(x[rows], order, axis=0)
        pad = np.full((kl, width), np.inf)
        ext = np.concatenate([pad, xs, pad])
        near = np.stack([np.abs(ext[kl + d:kl + d + rows.size] - xs) for d in range(-kl, kl + 1) if d])
        r = np.empty_like(xs)
        np.put_along_axis(r, order, np.sort(near, axis=0)[kl - 1], axis=0)
        radius[rows], k_of[rows], count_of[rows] = r, kl, rows.size
    keep = count_of > 1
    x, radius, k_of, count_of = x[keep], radius[keep], k_of[keep], count_of[keep]
    n = x.shape[0]
    if n == 0:
        return np.zeros(width)
    m = np.zeros((n, width))
    for j in range(width):
        column, xi, r = np.sort(x[:, j]), x[:, j], radius[:, j]
        hi = np.searchsorted(column, xi + r, side="left")
        lo = np.searchsorted(column, xi - r, side="right")
        # xi +- r is rounded: move each end by the one point whose true distance says otherwise.
        hi -= (hi > 0) & (np.abs(column[np.maximum(hi - 1, 0)] - xi) >= r)
        hi += (hi < n) & (np.abs(column[np.minimum(hi, n - 1)] - xi) < r)
        lo += (lo < n) & (np.abs(column[np.minimum(lo, n - 1)] - xi) >= r) & (column[np.minimum(lo, n - 1)] < xi)
        lo -= (lo > 0) & (np.abs(column[np.maximum(lo - 1, 0)] - xi) < r)
        m[:, j] = hi - lo
    mi = digamma(n) + np.mean(digamma(k_of)) - np.mean(digamma(count_of)) - np.mean(digamma(m), axis=0)
    return np.maximum(mi, 0.0)


def mutual_information(features: np.ndarray, y: np.ndarray, num_classes: int, *, seed: int = 0) -> np.ndarray:
    """MI[c, k] = MI(features[:, k]; 1[y = c]) in nats (C, K): the estimate of scikit-learn's
    ``mutual_info_classif`` (3 neighbours; features scaled to unit variance, then noise of
    1e-10 of their mean size drawn with ``seed`` to break ties), computed column-wise by sorting,
    which is what makes thousands of features (the glass-box's responses) affordable."""
    features = np.asarray(features, np.float64)
    y = np.asarray(y)
    if features.ndim != 2 or y.shape != (features.shape[0],):
        raise ValueError(f"mutual_information: expected features (N, K) and y (N,), got {features.shape} and {y.shape}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"mutual_information: expected num_classes an int >= 2, got {num_classes!r}")
    std = features.std(axis=0)
    x = features / np.where(std > 0, std, 1.0)
    x = x + 1e-10 * np.maximum(1.0, np.mean(np.abs(x), axis=0)) * np.random.RandomState(seed).standard_normal(x.shape)
    return np.stack([_knn_mi(x, y == c) for c in range(num_classes)])


def mis(mi: np.ndarray) -> float:
    """The mutual information score of an MI matrix (C, K): mean over filters of the max over classes."""
    mi = np.asarray(mi, np.float64)
    if mi.ndim != 2 or 0 in mi.shape:
        raise ValueError(f"mis: expected an MI matrix (C, K), got shape {mi.shape}")
    return float(np.mean(np.max(mi, axis=0)))


# --- filter classes ---------------------------------------------------------------------------


def _glassbox_filter_classes(params, width: int) -> np.ndarray | None:
    """One-hot (D, C) of the glass-box's response features: each is one filter (of one class)
    pooled over one grid cell. Its responses concatenate, per filter bank (patches, then
    prototypes), a (grid, grid, F') map flattened with the channel fastest, F' = 2F for the
    relu_pair nonlinearity (the positive halves of the F filters, then the negative ones), F for abs.
    """
    banks = []
    for name, cells in (("patches", getattr(params.config, "grid", None)), ("prototypes", 1)):
        bank = getattr(params, name, None)
        if bank is not None:
            banks.append((np.asarray(bank.classes), cells))
    if not banks or any(cells is None for _, cells in banks):
        return None
    halves = 2 if getattr(params.config, "rho", None) == "relu_pair" else 1
    columns = [np.tile(np.tile(classes, halves), cells * cells) for classes, cells in banks]
    labels = np.concatenate(columns)
    if labels.shape[0] != width:
        return None
    return np.eye(len(params.class_names), dtype=np.float32)[labels]


def _own_filter_classes(fitted, image_shape) -> tuple[str, np.ndarray] | None:
    """(layer, G) where the system states its filters' classes, else None."""
    params = fitted.params
    method = getattr(params, "class_specific_filters", None)
    if callable(method):
        return method()
    if hasattr(params, "patches") and hasattr(params, "prototypes") and hasattr(params, "class_names"):
        shapes = _layer_shapes(fitted, image_shape)
        if "response" in shapes and len(shapes["response"].shape) == 2:
            g = _glassbox_filter_classes(params, int(shapes["response"].shape[1]))
            if g is not None:
                return "response", g
    return None


def filter_classes(fitted, image_shape: Sequence[int]) -> tuple[str, np.ndarray] | None:
    """(layer, G (K, C)) of a system that states which class each filter belongs to (a CSG gate,
    the glass-box's class-labelled filters), else None."""
    return _own_filter_classes(fitted, image_shape)


def gate_density(gate: np.ndarray) -> float:
    """||G||_1 / (K C)."""
    gate = np.asarray(gate, np.float64)
    if gate.ndim != 2:
        raise ValueError(f"gate_density: expected a gate (K, C), got shape {gate.shape}")
    return float(np.abs(gate).sum() / gate.size)


# --- localization -----------------------------------------------------------------------------


def object_masks(dataset_name: str, x: np.ndarray, y: np.ndarray,
                 class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(masks (M, H, W) bool, the indices (M,) of the images they belong to, the kind), or None
    for a data set without a stated mask: digits' strokes (pixel > 0.5), lfw_faces' central face
    ellipse on the face images."""
    x = np.asarray(x)
    if dataset_name in STROKE_SETS:
        return x.max(axis=-1) > 0.5, np.arange(x.shape[0]), "stroke (pixel > 0.5)"
    if dataset_name in FACE_SETS and "face" in class_names:
        keep = np.flatnonzero(np.asarray(y) == list(class_names).index("face"))
        h, w = x.shape[1:3]
        rows, cols = np.mgrid[:h, :w]
        a, b = FACE_ELLIPSE[0] * h, FACE_ELLIPSE[1] * w
        ellipse = ((rows - (h - 1) / 2) / a) ** 2 + ((cols - (w - 1) / 2) / b) ** 2 <= 1
        return np.broadcast_to(ellipse, (keep.size, h, w)).copy(), keep, "central face ellipse"
    return None


def top_filters(pooled: np.ndarray, y: np.ndarray, num_classes: int, count: int) -> np.ndarray:
    """(C, count) indices of each class's filters with the highest mean pooled activation (N, K) on its images."""
    pooled, y = np.asarray(pooled, np.float64), np.asarray(y)
    count = min(count, pooled.shape[1])
    means = np.stack([pooled[y == c].mean(axis=0) if np.any(y == c) else np.zeros(pooled.shape[1])
                      for c in range(num_classes)])
    return np.argsort(-means, axis=1, kind="stable")[:, :count]


def preferred_classes(pooled: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """One-hot (K, C) of each filter's preferred class: the class with the highest mean pooled
    activation (N, K) over its images y (N,)."""
    pooled, y = np.asarray(pooled, np.float64), np.asarray(y)
    means = np.stack([pooled[y == c].mean(axis=0) if np.any(y == c) else np.full(pooled.shape[1], -np.inf)
                      for c in range(num_classes)])
    return np.eye(num_classes, dtype=np.float32)[np.argmax(means, axis=0)]


def gradient_maps(fitted, layer: str, x: np.ndarray, filters: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
    """(N, F, H, W): for each image (N, H, W, C) and each of its filters (N, F) int, the L2 norm over
    channels of the gradient of that filter's pooled activation with respect to the image."""
    x = np.asarray(x, np.float32)
    filters = np.asarray(filters, np.int32)
    if filters.ndim != 2 or filters.shape[0] != x.shape[0]:
        raise ValueError(f"gradient_maps: expected filters (N, F) for {x.shape[0]} images, got shape {filters.shape}")

    def one(params, image, index):
        def selected(z):
            return _pool(fitted.system.features(params, z[None])[layer])[0][index]

        jac = jax.jacrev(selected)(image)  # (F, H, W, C)
        return jnp.sqrt(jnp.sum(jac * jac, axis=-1))

    fn = jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))
    out = []
    size = min(batch_size, x.shape[0])
    for start in progress(range(0, x.shape[0], size), total=-(-x.shape[0] // size), desc="gradient maps",
                          unit="batch"):
        chunk, index = x[start:start + size], filters[start:start + size]
        out.append(np.asarray(fn(fitted.params, pad_rows(chunk, size), pad_rows(index, size)))[:chunk.shape[0]])
    return np.concatenate(out)


def binarise_gradient_maps(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Gradient maps (..., H, W) divided by their RMS over pixels, blurred by a Gaussian of
    ``sigma`` pixels (mirror borders), kept where > 1: bool (..., H, W)."""
    from scipy.ndimage import gaussian_filter

    maps = np.asarray(maps, np.float64)
    rms = np.sqrt(np.mean(maps ** 2, axis=(-2, -1), keepdims=True))
    normal = np.divide(maps, rms, out=np.zeros_like(maps), where=rms > 0)
    blurred = gaussian_filter(normal, sigma=[0] * (maps.ndim - 2) + [sigma, sigma], mode="reflect")
    return blurred > 1.0


def binarise_top(maps: np.ndarray, rate: float = CAM_TOP_RATE) -> np.ndarray:
    """Maps (N, H, W): each kept where it is at least its k-th largest value, k = int(rate H W)."""
    maps = np.asarray(maps)
    flat = maps.reshape(maps.shape[0], -1)
    k = max(1, int(flat.shape[1] * rate))
    threshold = np.sort(flat, axis=1)[:, -k]
    return maps >= threshold[:, None, None]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boolean masks (..., H, W); 0 where both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    inter = np.sum(a & b, axis=(-2, -1))
    union = np.sum(a | b, axis=(-2, -1))
    return np.divide(inter, union, out=np.zeros(inter.shape, np.float64), where=union > 0)


def cam_maps(fitted, x: np.ndarray, y: np.ndarray, *, batch_size: int = 64) -> np.ndarray | None:
    """Class activation maps of images x (N, H, W, C) for classes y (N,), upsampled bilinearly to
    (N, H, W); None when the system's params have no ``class_activation_maps``."""
    if not callable(getattr(fitted.params, "class_activation_maps", None)):
        return None
    h, w = x.shape[1:3]

    def fn(params, chunk, labels):
        cams = params.class_activation_maps(chunk, labels)
        return jax.image.resize(cams, (cams.shape[0], h, w), method="bilinear")

    fn = jax.jit(fn)
    out = []
    size = min(batch_size, x.shape[0])
    for start in range(0, x.shape[0], size):
        chunk, labels = x[start:start + size], np.asarray(y[start:start + size], np.int32)
        out.append(np.asarray(fn(fitted.params, pad_rows(chunk, size), pad_rows(labels, size)))[:chunk.shape[0]])
    return np.concatenate(out)


def localization(fitted, dataset, *, layer: str | None = None, images: int = 300, top: int = 5,
                 sigma: float | None = None, seed: int = 0) -> dict | None:
    """Gradient-map and CAM IoU against the data set's object masks, with their APs; None when the
    data set has no stated masks. ``images``: at most this many test images (a seeded subset);
    ``top``: filters per class; ``sigma``: the blur in pixels (default H / 28: 1 pixel on 28x28)."""
    found = object_masks(dataset.name, dataset.x_test, dataset.y_test, dataset.class_names)
    if found is None:
        return None
    masks, index, kind = found
    if index.size > images:
        keep = np.sort(np.random.default_rng(seed).permutation(index.size)[:images])
        masks, index = masks[keep], index[keep]
    x, y = dataset.x_test[index], np.asarray(dataset.y_test)[index]
    image_shape = dataset.x_test.shape[1:]
    layer = layer or filter_layer(fitted, image_shape)
    sigma = float(image_shape[0]) / 28.0 if sigma is None else float(sigma)
    pooled_train = pooled_features(fitted, dataset.x_train, layer)
    tops = top_filters(pooled_train, dataset.y_train, dataset.num_classes, top)
    grads = gradient_maps(fitted, layer, x, tops[y])
    grad_iou = iou(binarise_gradient_maps(grads, sigma), masks[:, None]).mean(axis=1)
    out = {"mask": kind, "layer": layer, "images": int(index.size), "top_filters": int(tops.shape[1]), "sigma": sigma,
           "gradient_iou": float(grad_iou.mean()), "gradient_ap": float(np.mean(grad_iou >= GRADIENT_AP_IOU)),
           "cam_iou": None, "cam_ap": None}
    cams = cam_maps(fitted, x, y)
    if cams is not None:
        cam_iou = iou(binarise_top(cams), masks)
        out.update(cam_iou=float(cam_iou.mean()), cam_ap=float(np.mean(cam_iou >= CAM_AP_IOU)))
    return out


# --- adversarial detection ------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _loss_grad(system):
    def loss(params, x, y):
        logits = system.scores(params, x)
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=1))

    return jax.grad(loss, argnums=1)


def fgsm(fitted, x: np.ndarray, y: np.ndarray, eps: float, *, batch_size: int = 128) -> np.ndarray:
    """Fast gradient sign images: clip(x + eps sign(d CE / dx), 0, 1), x (N, H, W, C), y (N,)."""
    grad = _loss_grad(fitted.system)
    fn = jax.jit(lambda p, xb, yb: jnp.clip(xb + eps * jnp.sign(grad(p, xb, yb)), 0.0, 1.0))
    return _batched(fn, fitted.params, x, y, batch_size)


def pgd(fitted, x: np.ndarray, y: np.ndarray, eps: float, *, steps: int = 10, step_size: float | None = None,
        key: jax.Array, batch_size: int = 128) -> np.ndarray:
    """Projected gradient descent (Madry et al. 2018) in the L-inf ball of radius ``eps``: a uniform
    random start, then ``steps`` signed-gradient steps of ``step_size`` (default 2.5 eps / steps),
    each projected back onto the ball and [0, 1]."""
    grad = _loss_grad(fitted.system)
    step_size = 2.5 * eps / steps if step_size is None else step_size

    def attack(p, xb, yb, k):
        start = jnp.clip(xb + jax.random.uniform(k, xb.shape, xb.dtype, -eps, eps), 0.0, 1.0)

        def body(_, z):
            z = z + step_size * jnp.sign(grad(p, z, yb))
            return jnp.clip(jnp.clip(z, xb - eps, xb + eps), 0.0, 1.0)

        return jax.lax.fori_loop(0, steps, body, start)

    fn = jax.jit(attack)
    keys = iter(jax.random.split(key, -(-x.shape[0] // min(batch_size, x.shape[0]))))
    return _batched(lambda p, xb, yb: fn(p, xb, yb, next(keys)), fitted.params, x, y, batch_size)


def _batched(fn, params, x, y, batch_size) -> np.ndarray:
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int32)
    size = min(batch_size, x.shape[0])
    out = []
    for start in range(0, x.shape[0], size):
        chunk = x[start:start + size]
        out.append(np.asarray(fn(params, pad_rows(chunk, size), pad_rows(y[start:start + size], size)))[:chunk.shape[0]])
    return np.concatenate(out)


def evidence_ratio(pooled: np.ndarray, gate: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """r(x) = sum_k G[k, y_hat] a_k / sum_k a_k (N,) from pooled features a (N, K) >= 0, G (K, C)
    and predicted classes y_hat (N,); 0 where every a_k is 0."""
    a = np.asarray(pooled, np.float64)
    gate = np.asarray(gate, np.float64)
    if a.ndim != 2 or gate.ndim != 2 or gate.shape[0] != a.shape[1]:
        raise ValueError(f"evidence_ratio: expected pooled (N, K) and a gate (K, C), got {a.shape} and {gate.shape}")
    own = np.sum(a * gate[:, np.asarray(predicted)].T, axis=1)
    total = np.sum(a, axis=1)
    return np.divide(own, total, out=np.zeros_like(total), where=total > 0)


def _logistic_auc(clean: np.ndarray, adversarial: np.ndarray, pairs: np.ndarray, *, seed: int) -> float:
    """ROC AUC of a logistic detector (standardised pooled features), 2-fold cross-fitted with an
    image and its adversarial version always in the same fold; ``pairs`` (M,) the clean row of
    each adversarial row."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fold = np.random.default_rng(seed).permutation(clean.shape[0]) % 2
    x = np.concatenate([clean, adversarial]).astype(np.float64)
    label = np.concatenate([np.zeros(clean.shape[0]), np.ones(adversarial.shape[0])])
    folds = np.concatenate([fold, fold[pairs]])
    score = np.zeros(label.shape[0])
    for f in (0, 1):
        train, test = folds != f, folds == f
        if len(np.unique(label[train])) < 2 or not np.any(test):
            return float("nan")
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(x[train], label[train])
        score[test] = model.predict_proba(x[test])[:, 1]
    return float(roc_auc_score(label, score))


def detection(fitted, dataset, *, layer: str | None = None, gate: np.ndarray | None = None,
              preferred: np.ndarray | None = None, images: int = 500, eps: float | None = None, steps: int = 10,
              seed: int = 0) -> dict:
    """Adversarial detection on at most ``images`` test images (a seeded subset) that the system
    classifies correctly. For FGSM and PGD at ``eps`` (default 0.1, pixels in [0, 1]):
    the attack's success rate and the ROC AUC of clean vs successful adversarial images scored by
    1 - r(x) with ``gate`` (the system's own filter classes) and with ``preferred`` (the one-hot of
    each filter's preferred class), and by a logistic detector on the pooled features."""
    from sklearn.metrics import roc_auc_score

    image_shape = dataset.x_test.shape[1:]
    layer = layer or filter_layer(fitted, image_shape)
    eps = 0.1 if eps is None else float(eps)
    x, y = comparison.metric_images(dataset.x_test, np.asarray(dataset.y_test), images, seed=seed)
    predict = comparison.predictor(fitted)
    right = predict(x) == y
    x, y = x[right], y[right]
    out = {"layer": layer, "eps": eps, "pgd_steps": steps, "images": int(x.shape[0])}
    clean = pooled_features(fitted, x, layer)
    attacks = {"fgsm": lambda: fgsm(fitted, x, y, eps),
               "pgd": lambda: pgd(fitted, x, y, eps, steps=steps, key=jax.random.key(seed))}
    for name, attack in attacks.items():
        moved = attack()
        predicted = predict(moved)
        fooled = np.flatnonzero(predicted != y)
        row = {"success_rate": float(fooled.size / max(x.shape[0], 1)), "auc_gate": None, "auc_preferred": None,
               "auc_logistic": None}
        if fooled.size and x.shape[0] >= 4:
            adversarial = pooled_features(fitted, moved[fooled], layer)
            label = np.concatenate([np.zeros(x.shape[0]), np.ones(fooled.size)])
            for key, g in (("auc_gate", gate), ("auc_preferred", preferred)):
                if g is not None:
                    r = np.concatenate([evidence_ratio(clean, g, y), evidence_ratio(adversarial, g, predicted[fooled])])
                    row[key] = float(roc_auc_score(label, 1.0 - r))
            row["auc_logistic"] = _logistic_auc(clean, adversarial, fooled, seed=seed)
        out[name] = row
    return out


# --- one system, and the report section -----------------------------------------------------


def _history(fitted) -> list[dict] | None:
    info = getattr(fitted.params, "info", None)
    history = info.get("history") if isinstance(info, Mapping) else None
    return list(history) if history else None


def evaluate(fitted, dataset, *, seed: int = 0, images: int = 1000, localization_images: int = 300,
             detection_images: int = 500, eps: float | None = None, top: int = 5, matrix_filters: int = 64) -> dict:
    """Every class-specificity number of one fitted system on ``dataset``: accuracy (clean and
    under the robustness group), MIS and its MI matrix on the filter layer (test images; ``mis_train``
    on at most ``images`` train images, steadier where the test set is small), the filter classes
    and their density, localization, detection and, for CSG systems, the per-epoch accuracy with
    the gate off and on. The MI matrix and filter classes are stored for at most ``matrix_filters``
    filters (``matrix_filters`` lists which: evenly spaced over the filters grouped by their
    highest-MI class), enough to draw them; every number is computed from all filters."""
    image_shape = dataset.x_test.shape[1:]
    own = filter_classes(fitted, image_shape)
    layer = own[0] if own is not None else filter_layer(fitted, image_shape)
    group = scoring.robustness_group(image_shape)
    accuracy = scoring.scores(comparison.predictor(fitted), dataset.x_test, dataset.y_test, group=group, seed=seed,
                              num_classes=dataset.num_classes)
    x, y = comparison.metric_images(dataset.x_test, np.asarray(dataset.y_test), images, seed=seed)
    mi = mutual_information(pooled_features(fitted, x, layer), y, dataset.num_classes, seed=seed)
    x_train, y_train = comparison.metric_images(dataset.x_train, np.asarray(dataset.y_train), images, seed=seed)
    pooled_train = pooled_features(fitted, x_train, layer)
    mi_train = mutual_information(pooled_train, y_train, dataset.num_classes, seed=seed)
    preferred = preferred_classes(pooled_train, y_train, dataset.num_classes)
    gate = own[1] if own is not None else None
    order = _filter_order(mi)
    shown = order[np.linspace(0, order.size - 1, min(matrix_filters, order.size)).round().astype(int)]
    return {
        "system": fitted.system.name,
        "title": fitted.system.title,
        "layer": layer,
        "filters": int(mi.shape[1]),
        "accuracy": accuracy["accuracy"],
        "accuracy_transformed": accuracy["accuracy_transformed"],
        "test_group": group,
        "mis": mis(mi),
        "mis_train": mis(mi_train),
        "mis_images": int(x.shape[0]),
        "filters_per_class": np.bincount(np.argmax(mi, axis=0), minlength=dataset.num_classes).tolist(),
        "matrix_filters": shown.tolist(),
        "mi_matrix": np.round(mi[:, shown], 5).tolist(),  # 1e-5 nats: below the estimator's own noise
        "filter_classes": None if gate is None else np.round(np.asarray(gate, np.float64)[shown], 3).tolist(),
        "gate_density": None if gate is None else gate_density(gate),
        "localization": localization(fitted, dataset, layer=layer, images=localization_images, top=top, seed=seed),
        "detection": detection(fitted, dataset, layer=layer, gate=gate, preferred=preferred, images=detection_images,
                               eps=eps, seed=seed),
        "history": _history(fitted),
    }


def run(dataset, fitted: Mapping[str, Any], *, seed: int = 0, **options) -> dict:
    """The class-specificity section of a comparison: ``evaluate`` for every fitted system
    (name -> ``comparison.Fitted``); ``options`` go to ``evaluate``."""
    if not fitted:
        raise ValueError("class_specificity.run: expected at least one fitted system, got none")
    return {"dataset": dataset.name, "classes": list(dataset.class_names),
            "systems": {name: evaluate(f, dataset, seed=seed, **options) for name, f in fitted.items()}}


def _pgd(result: Mapping, key: str):
    return ((result.get("detection") or {}).get("pgd") or {}).get(key)


def headline(result: Mapping) -> dict:
    """The numbers ``glassjax train-csg`` leads with, from one ``evaluate`` result: accuracy (gate
    off), MIS, gate density, gradient-map and CAM AP, and the PGD detection AUC of r(x) (with the
    system's own filter classes where it has them, else the preferred-class one-hot) and of the
    logistic detector."""
    loc = result.get("localization") or {}
    auc = _pgd(result, "auc_gate")
    return {"accuracy": result["accuracy"], "accuracy_transformed": result["accuracy_transformed"], "mis": result["mis"],
            "mis_train": result.get("mis_train"), "gate_density": result["gate_density"], "localization_ap": loc.get("gradient_ap"),
            "localization_cam_ap": loc.get("cam_ap"),
            "detection_auc": auc if auc is not None else _pgd(result, "auc_preferred"),
            "detection_auc_logistic": _pgd(result, "auc_logistic")}


def csg_summary(csg: Mapping, standard: Mapping) -> dict:
    """``headline`` of a CSG network and of the same network trained the standard way, the
    latter's keys suffixed ``_standard`` (gate density has no standard counterpart)."""
    out = headline(csg)
    out.update({f"{k}_standard": v for k, v in headline(standard).items() if k != "gate_density"})
    return out


def table_rows(section: Mapping) -> list[dict]:
    """One flat row per system: accuracy, MIS, gate density, localization APs, detection AUCs."""
    rows = []
    for name, s in section["systems"].items():
        loc, det = s.get("localization") or {}, s.get("detection") or {}
        row = {"system": name, "layer": s["layer"], "filters": s["filters"], "accuracy": s["accuracy"],
               "accuracy_transformed": s["accuracy_transformed"], "mis": s["mis"], "mis_train": s.get("mis_train"),
               "gate_density": s["gate_density"],
               "gradient_iou": loc.get("gradient_iou"), "gradient_ap": loc.get("gradient_ap"),
               "cam_iou": loc.get("cam_iou"), "cam_ap": loc.get("cam_ap")}
        for attack in ("fgsm", "pgd"):
            a = det.get(attack) or {}
            row[f"{attack}_success"] = a.get("success_rate")
            row[f"{attack}_auc_gate"] = a.get("auc_gate")
            row[f"{attack}_auc_preferred"] = a.get("auc_preferred")
            row[f"{attack}_auc_logistic"] = a.get("auc_logistic")
            # r(x) with the system's own filter classes where it has them, else the preferred classes.
            row[f"{attack}_auc_r"] = a.get("auc_gate") if a.get("auc_gate") is not None else a.get("auc_preferred")
        rows.append(row)
    return rows


def _filter_order(mi: np.ndarray) -> np.ndarray:
    """Filters grouped by their highest-MI class, strongest first within each class."""
    return np.lexsort((-mi.max(axis=0), mi.argmax(axis=0)))
