"""Influence of the training images on one test image's loss, by differentiating the glass-box fit.

For the glass-box fitted with ``config`` and ``key`` on (x_train, y_train), the influence of
training image j on test image i is

    I[j] = d loss_i / d w_j  at w = 1,   loss_i = logsumexp(s) - s[y_i],  s = the class scores
                                          (``decision_function``) of test image i,

the derivative of the test loss with respect to training image j's ``sample_weight`` in the
differentiable fit (``systems.glassbox.differentiable``): one reverse pass through the whole fit
gives all N. I[j] > 0: upweighting j raises the loss (harmful); I[j] < 0: helpful. Removing j
changes the loss by about -I[j] (first order, weight 1 -> 0).

    infl = Influence(x_train, y_train)                # GlassBox() defaults, seed 0
    loss, scores = infl.scores(x_test[i], y_test[i])  # scores (N,)
    influence("digits", test_index=3, top=10)         # the command's JSON
"""
from __future__ import annotations

import functools
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import data
from glassjax.core import arrays, reduction
from glassjax.systems.glassbox import differentiable
from glassjax.systems.glassbox.config import GlassBoxConfig
from glassjax.systems.glassbox.model import apply

__all__ = ["Influence", "influence", "highest_loss", "rank_highest_loss", "test_losses", "cross_entropy"]


def cross_entropy(scores: jax.Array, labels: jax.Array) -> jax.Array:
    """The cross-entropy (N,) of the softmax of class scores (N, C) at int labels (N,)."""
    return jax.nn.logsumexp(scores, axis=1) - jnp.take_along_axis(scores, labels[:, None], axis=1)[:, 0]


def _loss(plan, x_train, w, x_test, y_test):
    return jnp.sum(cross_entropy(apply(differentiable.refit(plan, x_train, w), x_test), y_test))


_value_and_grad = jax.jit(jax.value_and_grad(_loss, argnums=2))


class Influence:
    """The differentiable glass-box fit of (x_train (N, H, W[, C]), y_train (N,)) with ``config``
    (default ``GlassBoxConfig()``) and ``key`` (default PRNGKey(0), as ``GlassBox(seed=0)``), in float64.

    ``scores(x, y)``: the test loss of one image x (H, W[, C]) with label y, and the influence of
    every training image on it (N,). ``params``: the fitted model (float64 GlassBoxParams), fitted on first use.
    """

    def __init__(self, x_train: Any, y_train: Any, *, config: GlassBoxConfig | None = None, key: jax.Array | None = None,
                 class_names: Sequence[str] | None = None):
        config = GlassBoxConfig() if config is None else config
        key = jax.random.PRNGKey(0) if key is None else key
        x_train = data.as_images(np.asarray(x_train), "Influence images")
        self.plan = differentiable.plan_fit(config, x_train.shape, y_train, key=key, class_names=class_names, images=x_train)
        with reduction.float64():
            self.x_train = jnp.asarray(x_train, jnp.float64)
            self.weights = jnp.ones((x_train.shape[0],), jnp.float64)

    @functools.cached_property
    def params(self):
        with reduction.float64():
            return differentiable._refit_jit(self.plan, self.x_train, self.weights)

    def scores(self, x: Any, y: int) -> tuple[float, np.ndarray]:
        """(loss, influence (N,) float64) of test image x (H, W[, C]) with label y."""
        x = data.as_images(np.asarray(x)[None], "Influence.scores image")
        if x.shape[1:] != self.plan.image_shape:
            raise ValueError(f"Influence.scores: expected an image of shape {self.plan.image_shape}, got {x.shape[1:]}")
        y = arrays.as_labels(np.asarray([y]), 1, "Influence.scores", name="label y", num_classes=self.plan.num_classes)
        with reduction.float64():
            loss, grad = _value_and_grad(self.plan, self.x_train, self.weights, jnp.asarray(x, jnp.float64),
                                         jnp.asarray(y, jnp.int32))
            return float(loss), np.asarray(grad)


def test_losses(params, x_test: Any, y_test: Any) -> np.ndarray:
    """The cross-entropy (N,) of every test image under fitted params (float64 params: call under float64())."""
    dtype = params.pca.mean.dtype
    scores = jax.jit(apply)(params, jnp.asarray(x_test, dtype))
    return np.asarray(cross_entropy(scores, jnp.asarray(y_test, jnp.int32)))


def _ranked(scores: np.ndarray, top: int) -> tuple[list[int], list[int]]:
    """(harmful, helpful): the ``top`` indices of largest and of most negative influence."""
    order = np.argsort(scores, kind="stable")
    return [int(j) for j in order[::-1][:top]], [int(j) for j in order[:top]]


def influence(dataset: str, test_index: int, *, top: int = 10, seed: int = 0, config: GlassBoxConfig | None = None) -> dict:
    """The training images of ``data.load(dataset)`` ranked by their influence on test image
    ``test_index``'s loss, for the model ``glassjax fit --dataset NAME`` fits (GlassBox defaults, key ``seed``).

    Returns {dataset, test_index, label, loss, harmful, helpful, harmful_scores, helpful_scores,
    seconds}: harmful / helpful the ``top`` training indices (into x_train) whose upweighting raises /
    lowers the loss most; seconds the time of the influence computation (compile included the first time).
    """
    test_index = arrays.as_int(test_index, "influence", "test_index", 0)
    top = arrays.as_int(top, "influence", "top", 1)
    ds = data.load(dataset)
    if test_index >= ds.x_test.shape[0]:
        raise ValueError(f"influence: expected test_index < {ds.x_test.shape[0]} (the test images of {dataset}), got {test_index}")
    infl = Influence(ds.x_train, ds.y_train, config=config, key=jax.random.PRNGKey(seed), class_names=ds.class_names)
    start = time.perf_counter()
    loss, scores = infl.scores(ds.x_test[test_index], int(ds.y_test[test_index]))
    seconds = time.perf_counter() - start
    harmful, helpful = _ranked(scores, min(top, scores.shape[0]))
    return {"dataset": dataset, "test_index": test_index, "label": int(ds.y_test[test_index]), "loss": loss,
            "harmful": harmful, "helpful": helpful, "harmful_scores": [float(scores[j]) for j in harmful],
            "helpful_scores": [float(scores[j]) for j in helpful], "seconds": round(seconds, 3)}


def rank_highest_loss(infl: Influence, x_test: Any, y_test: Any, count: int, *, top: int = 5):
    """Yield (entry, scores) for the ``count`` test images (x_test (M, H, W[, C]), y_test (M,)) of
    highest loss under ``infl``'s model, highest first: entry {test_index, label, loss, harmful,
    helpful, seconds} (``top`` of each; seconds: that image's influence computation), scores (N,)."""
    with reduction.float64():
        losses = test_losses(infl.params, x_test, y_test)
    for i in np.argsort(-losses, kind="stable")[:count]:
        start = time.perf_counter()
        loss, scores = infl.scores(x_test[i], int(y_test[i]))
        seconds = time.perf_counter() - start
        harmful, helpful = _ranked(scores, min(top, scores.shape[0]))
        yield ({"test_index": int(i), "label": int(y_test[i]), "loss": loss, "harmful": harmful, "helpful": helpful,
                "seconds": round(seconds, 3)}, scores)


def highest_loss(dataset: data.Dataset, count: int, *, top: int = 5, seed: int = 0) -> list[dict]:
    """The ``count`` test images of ``dataset`` with the highest loss under the default glass-box
    (``GlassBox(seed=seed)``, differentiable fit), each with its ``top`` most harmful and helpful
    training images: [{test_index, label, loss, harmful, helpful, seconds}], highest loss first."""
    count = arrays.as_int(count, "highest_loss", "count", 1)
    top = arrays.as_int(top, "highest_loss", "top", 1)
    infl = Influence(dataset.x_train, dataset.y_train, key=jax.random.PRNGKey(seed), class_names=dataset.class_names)
    return [entry for entry, _ in rank_highest_loss(infl, dataset.x_test, dataset.y_test, count, top=top)]
