"""``GlassBox``: the glass-box as a scikit-learn estimator over the pure ``fit`` / ``apply``."""
from __future__ import annotations

import copy
import dataclasses
import functools
import os
import time
from typing import Sequence

import jax
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.utils.multiclass import type_of_target

from glassjax import data
from glassjax.core import arrays, parallel
from glassjax.core.batching import map_batches
from glassjax.data import sources as streaming
from glassjax.systems.glassbox.config import GlassBoxConfig
from glassjax.systems.glassbox.fit import fit
from glassjax.systems.glassbox.model import GlassBoxParams, apply, feature_action, represent, transform
from glassjax.systems.glassbox.modelfile import load_params, save_params

__all__ = ["GlassBox"]

_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(GlassBoxConfig))
_FUNCTIONS = {"represent": represent, "transform": transform, "apply": apply}


@functools.lru_cache(maxsize=None)
def _compiled(name: str, mesh):
    """``represent`` / ``transform`` / ``apply`` jitted over ``mesh``; shared, so a refit or a clone of
    the same config and shapes (cross-validation folds) does not compile again."""
    return jax.jit(parallel.per_device(_FUNCTIONS[name], mesh))


class GlassBox(ClassifierMixin, BaseEstimator):
    """The glass-box as a scikit-learn classifier of images (N, H, W) or (N, H, W, C).

    >>> model = GlassBox(group="d4", representation="invariant").fit(x_train, y_train)
    >>> model.score(x_test, y_test)

    Parameters: every field of ``GlassBoxConfig`` (same names and defaults), ``seed`` (the
    fit's PRNG key) and ``devices`` (the jax devices batches are sharded over; default all).
    They are stored as given and checked by ``fit``; ``config`` is the GlassBoxConfig they make.

    Fitted: ``classes_`` (C,) the sorted labels, of any type (fit encodes them as 0..C-1);
    ``image_shape_`` (H, W, C); ``params_`` (GlassBoxParams); ``fit_seconds_``.

    ``decision_function`` is (N, C) even for two classes, so scikit-learn's binary scorers
    that expect (N,) scores (roc_auc, average_precision) do not apply.
    """

    def __init__(
        self,
        *,
        group: str = "d4",
        representation: str = "invariant",
        filters: str = "patch",
        patch_size: int | None = None,
        filters_per_class: int = 8,
        grid: int | None = None,
        rho: str = "relu_pair",
        poolings: Sequence[str] | None = None,
        pool_dim: int = 32,
        orbit_dim: int = 128,
        reduction: str = "pca",
        components: int | None = None,
        whiten: bool = True,
        classifier: str = "logistic",
        regularization: float | None = None,
        batch_size: int = 256,
        seed: int = 0,
        devices: Sequence[jax.Device] | None = None,
    ):
        self.group = group
        self.representation = representation
        self.filters = filters
        self.patch_size = patch_size
        self.filters_per_class = filters_per_class
        self.grid = grid
        self.rho = rho
        self.poolings = poolings
        self.pool_dim = pool_dim
        self.orbit_dim = orbit_dim
        self.components = components
        self.whiten = whiten
        self.reduction = reduction
        self.classifier = classifier
        self.regularization = regularization
        self.batch_size = batch_size
        self.seed = seed
        self.devices = devices

    @property
    def config(self) -> GlassBoxConfig:
        """The validated GlassBoxConfig of the current parameters (ValueError naming a bad one)."""
        return GlassBoxConfig(**{name: getattr(self, name) for name in _CONFIG_FIELDS}).validated()

    def fit(self, x, y=None, sample_weight=None, *, class_names: Sequence[str] | None = None) -> "GlassBox":
        """Fit on images x (N, H, W[, C]) and labels y (N,), or on a batch source with y None.

        Labels may be of any type (``classes_`` = their sorted unique values); a batch source
        (``glassjax.data.sources``) carries labels 0..C-1, so ``classes_`` = arange(C).
        ``class_names`` name the classes in ``classes_`` order (default: str of each).
        ``sample_weight`` (N,) >= 0 weighs the images in every statistic (arrays only; see
        ``glassjax.systems.glassbox.fit``: integer weights equal repeated images).
        """
        start = time.perf_counter()
        config = self.config
        seed = arrays.as_seed(self.seed, "GlassBox")  # the one seed rule, as the CLI's --seed
        mesh = parallel.make_mesh(self.devices)
        key = jax.random.PRNGKey(seed)
        if streaming.is_source(x):
            params = fit(config, x, y, key=key, class_names=class_names, mesh=mesh, sample_weight=sample_weight)
            classes = np.arange(params.num_classes, dtype=np.int32)
        else:
            if y is None:
                raise ValueError("GlassBox.fit requires y to be passed, but the target y is None: "
                                 "expected labels (N,) with an array of images")
            x = data.as_images(x, "GlassBox.fit images")
            classes, codes = _encode_labels(y, x.shape[0])
            names = tuple(str(c) for c in (classes if class_names is None else class_names))
            if len(names) != classes.size:
                raise ValueError(f"GlassBox.fit: expected {classes.size} class names (one per class of classes_), got {len(names)}")
            params = fit(config, x, codes, key=key, class_names=names, mesh=mesh, sample_weight=sample_weight)
        self._set(params, mesh)
        self.classes_ = classes
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _set(self, params: GlassBoxParams, mesh=None) -> None:
        self.mesh_ = parallel.make_mesh(self.devices) if mesh is None else mesh
        self.params_ = parallel.replicate(self.mesh_, params)
        self.image_shape_ = tuple(params.image_shape)

    def _run(self, name: str, x, where: str) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"GlassBox.{where}: the model is not fitted; call fit(x, y) or GlassBox.load(path) first")
        x = data.as_images(x, f"GlassBox.{where} images")
        if x.shape[1:] != self.image_shape_:
            raise ValueError(f"GlassBox.{where}: expected images of shape (N, {', '.join(map(str, self.image_shape_))}), got {x.shape}")
        fn = _compiled(name, self.mesh_)
        return map_batches(lambda chunk: fn(self.params_, chunk), x, self.params_.config.batch_size, desc=where, mesh=self.mesh_)

    def represent(self, x) -> np.ndarray:
        """Layer 1 output (N, D_rep)."""
        return self._run("represent", x, "represent")

    def transform(self, x) -> np.ndarray:
        """Layers 1-2 output (N, K)."""
        return self._run("transform", x, "transform")

    def feature_action(self, g: int) -> np.ndarray:
        """M_g (K, K) float32 with ``transform(act(g, x)) == transform(x) @ M_g.T``, g an element
        index of ``glassjax.groups.get(group)``: block-diagonal, one irrep block rho(g) per block of
        features, the identity on invariant ones (``model.feature_action``). ValueError for rot:N,
        whose action is approximate."""
        if not hasattr(self, "params_"):
            raise NotFittedError("GlassBox.feature_action: the model is not fitted; call fit(x, y) or GlassBox.load(path) first")
        return feature_action(self.params_, g)

    def decision_function(self, x) -> np.ndarray:
        """Class scores (N, C), columns in ``classes_`` order."""
        return self._run("apply", x, "decision_function")

    def predict(self, x) -> np.ndarray:
        """Labels (N,), elements of ``classes_``."""
        scores = self._run("apply", x, "predict")  # first: NotFittedError before classes_ is read
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, x, y, sample_weight=None) -> float:
        """Accuracy on images x and labels y (N,)."""
        predicted = self.predict(x)
        y = np.asarray(y)
        if y.shape != predicted.shape:
            raise ValueError(f"GlassBox.score: expected labels of shape ({predicted.shape[0]},), got shape {y.shape}")
        return float(accuracy_score(y, predicted, sample_weight=sample_weight))

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path`` (.npz), atomically. The file keeps the class names, not ``classes_``."""
        if not hasattr(self, "params_"):
            raise NotFittedError("GlassBox.save: the model is not fitted")
        save_params(self.params_, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GlassBox":
        """A fitted GlassBox read from ``path``.

        Its parameters are the file's config (with the defaults fitting resolved), seed 0 and
        devices None. ``classes_`` = arange(C): a model fitted on other labels predicts indices
        into ``params_.class_names`` once reloaded (the names default to str of the labels).
        """
        params = load_params(path)
        model = cls(**{name: getattr(params.config, name) for name in _CONFIG_FIELDS})
        model._set(params)
        model.classes_ = np.arange(params.num_classes, dtype=np.int32)
        model.fit_seconds_ = None
        return model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # images: (N, H, W) or (N, H, W, C)
        tags.input_tags.three_d_array = True
        return tags

    def __sklearn_clone__(self) -> "GlassBox":
        """An unfitted copy with the same parameters; ``devices`` is shared (jax devices cannot be copied)."""
        if self.devices is None:
            return super().__sklearn_clone__()
        params = {k: clone(v, safe=False) for k, v in self.get_params(deep=False).items() if k != "devices"}
        twin = type(self)(**params, devices=self.devices)
        if hasattr(self, "_metadata_request"):
            twin._metadata_request = copy.deepcopy(self._metadata_request)
        return twin

    def __getstate__(self) -> dict:
        # Pickles hold host arrays; the mesh is rebuilt on load.
        state = dict(super().__getstate__())
        state.pop("mesh_", None)
        if "params_" in state:
            state["params_"] = jax.device_get(state["params_"])
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "params_" in state:
            self._set(state["params_"])


def _encode_labels(y, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Class labels y (N,) of any type -> (classes (C,) sorted, codes (N,) int32 in 0..C-1)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"GlassBox.fit labels: expected labels of shape (N,), got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"GlassBox.fit labels: expected one label per image ({n} images), got {y.shape[0]} labels")
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        raise ValueError(f"GlassBox.fit labels: expected finite class labels, got {int(y.size - np.isfinite(y).sum())} NaN or inf")
    try:
        kind = type_of_target(y)
        classes, codes = np.unique(y, return_inverse=True)
    except (TypeError, ValueError) as err:  # labels of mixed types
        raise ValueError(f"GlassBox.fit labels: expected class labels of one type, got {type(err).__name__}: {err}") from None
    if kind not in ("binary", "multiclass"):
        raise ValueError(f"GlassBox.fit labels: expected class labels (binary or multiclass), got {kind} targets")
    if classes.size < 2:
        raise ValueError(f"GlassBox.fit labels: expected at least 2 classes, got {classes.size} ({classes.tolist()})")
    return classes, codes.astype(np.int32)
