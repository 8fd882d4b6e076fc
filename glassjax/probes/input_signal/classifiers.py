"""The classifiers the probe reads: registered systems with differentiable scores, and the logistic anchor.

  Probed(name, scores, params, parameters)     scores(params, x (N, H, W, C)) -> (N, classes), jittable
  from_system(system, params)                  a fitted registered system as a Probed
  fit_logistic(dataset)                        multinomial logistic regression on the pixels (the anchor)
  gradient_problem(probed, x)                  None when d log softmax / d x is usable, else the reason

Whether a system is differentiable is measured, not declared: its scores are traced under
``jax.grad`` on a few images, and a trace that fails, a gradient that is not finite, or one
that is zero on every image (piecewise-constant scores) rules it out, with the reason.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays, classifiers

__all__ = ["ANCHOR", "Probed", "from_system", "fit_logistic", "logistic_scores", "gradient_problem"]

ANCHOR = "logistic"


class Probed(NamedTuple):
    """A frozen classifier: name, ``scores(params, x) -> (N, classes)`` (a module-level function, so
    jitted steps compile once per classifier), its params pytree, and its parameter count."""

    name: str
    scores: Callable[[Any, jax.Array], jax.Array]
    params: Any
    parameters: int


def _count(params: Any) -> int:
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params) if hasattr(leaf, "shape")))


def from_system(system, params) -> Probed:
    """A fitted registered system (``glassjax.systems.System``) as a Probed."""
    return Probed(system.name, system.scores, params, _count(params))


def logistic_scores(params: classifiers.LogisticParams, x: jax.Array) -> jax.Array:
    """Logits (N, classes) of the pixel logistic regression on images x (N, H, W, C)."""
    return classifiers.predict_scores(params, x.reshape(x.shape[0], -1))


def fit_logistic(dataset, *, l2: float = 1e-3, max_iter: int = 300) -> Probed:
    """Multinomial logistic regression on the flattened pixels of ``dataset``'s train split (L-BFGS,
    standardised pixels; ``glassjax.core.classifiers.fit_logistic``)."""
    x = arrays.as_images(dataset.x_train, "input_signal.fit_logistic")
    flat = jnp.asarray(np.asarray(x, np.float32).reshape(x.shape[0], -1))
    params = classifiers.fit_logistic(flat, jnp.asarray(dataset.y_train), num_classes=len(dataset.class_names),
                                      l2=l2, max_iter=max_iter)
    return Probed(ANCHOR, logistic_scores, params, int(params.weights.size + params.bias.size))


def gradient_problem(probed: Probed, x: Any) -> str | None:
    """None if the gradient of log softmax(scores) in the input is finite and non-zero on images
    x (n, H, W, C) (a few suffice); otherwise why the classifier cannot steer a decoder."""
    x = jnp.asarray(arrays.as_images(x, "input_signal.gradient_problem"), jnp.float32)

    def objective(images):
        return jnp.sum(jnp.max(jax.nn.log_softmax(probed.scores(probed.params, images), axis=-1), axis=-1))

    try:
        grad = np.asarray(jax.jit(jax.grad(objective))(x))
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"its scores cannot be differentiated in JAX ({type(err).__name__}: {first[:160]})"
    if not np.all(np.isfinite(grad)):
        return "the gradient of its scores in the input is not finite"
    per_image = np.abs(grad).reshape(grad.shape[0], -1).max(axis=1)
    if not np.any(per_image > 0):
        return "the gradient of its scores in the input is zero (piecewise-constant scores)"
    return None
