"""How invariant, how equivariant and how separable a representation is, layer by layer.

A feature function ``phi(x) -> {layer name: activation}`` maps images x (N, H, W, C) to
activations that are spatial (N, h, w, c) or vectors (N, d). ``phi`` must treat images
independently (no batch statistics): the metrics feed it images in chunks and orbits.

- ``invariance_error``: ||phi(g x) - phi(x)|| / ||phi(x)|| per group element.
- ``equivariance_error``: Lenc & Vedaldi (2015), "Understanding image representations by
  measuring their equivariance and equivalence": the held-out residual of the best linear
  map M_g with phi(g x) ~ M_g(g . phi(x)), where g . acts spatially on feature maps and
  not at all on vectors.
- ``lie_derivative``: Gruver et al. (2023), "The Lie derivative for measuring learned
  equivariance": ||d/dt [rho_out(-t) phi(rho_in(t) u)]|| at t = 0 relative to ||phi(u)||, by
  ``jax.jvp``, u the network's own input, spatial outputs rotated back on their own grid,
  mirror padding; ``e2e_lie_derivative`` their end-to-end number, mean |L softmax|.
- ``invariance_rate``: ||d/dt phi(rotate(x, t))|| at t = 0 relative to ||phi(x)||: nothing
  rotated back, zero padding, the data set's image rotated.
- ``separability`` and ``linear_probe_accuracy``: class geometry of a features (N, D) array.
- ``layer_report``: all of the above, one row per layer.

The metric functions are pure and jittable with ``phi`` and the group held static; they
batch over images with ``jax.lax.map`` so memory stays bounded by ``batch_size``.
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays, classifiers, groups
from glassjax.core.batching import map_chunks

__all__ = [
    "FeatureFn",
    "EquivarianceError",
    "invariance_error",
    "equivariance_error",
    "Network",
    "rotate",
    "lie_derivative",
    "e2e_lie_derivative",
    "invariance_rate",
    "separability",
    "linear_probe_accuracy",
    "mean_over_non_identity",
    "layer_report",
]

FeatureFn = Callable[[jax.Array], Mapping[str, jax.Array]]

_HIGHEST = jax.lax.Precision.HIGHEST


# --- input checks --------------------------------------------------------------------------


def _check_images(x, where: str) -> jax.Array:
    return jnp.asarray(arrays.as_images(x, where))


def _feature_shapes(phi: FeatureFn, x: jax.Array, batch: int, where: str) -> dict[str, tuple[int, ...]]:
    """Per-image activation shapes of ``phi`` on a batch of ``batch`` images like ``x``."""
    if not callable(phi):
        raise TypeError(f"{where}: expected a callable feature function phi, got {type(phi).__name__}")
    spec = jax.ShapeDtypeStruct((batch,) + x.shape[1:], x.dtype)
    out = jax.eval_shape(phi, spec)
    if not isinstance(out, Mapping) or not out:
        raise TypeError(f"{where}: expected phi to return a non-empty dict of layer activations, got {type(out).__name__}")
    shapes = {}
    for name, leaf in out.items():
        shape = getattr(leaf, "shape", None)
        if not isinstance(name, str) or shape is None:
            raise TypeError(f"{where}: expected phi to return {{str: array}}, got key {name!r} -> {type(leaf).__name__}")
        if len(shape) not in (2, 4) or shape[0] != batch:
            raise ValueError(
                f"{where}: expected layer {name!r} of shape (N, d) or (N, h, w, c) with N = {batch}, got shape {shape}"
            )
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(f"{where}: expected floating-point activations, got layer {name!r} of dtype {leaf.dtype}")
        shapes[name] = tuple(shape[1:])
    return shapes


def _identity_index(group: groups.Group) -> int:
    table = np.asarray(group.cayley_table)
    return int(np.flatnonzero((table == np.arange(group.order)).all(axis=1))[0])


def _flat(a: jax.Array) -> jax.Array:
    return a.reshape(a.shape[0], -1)


def _act_each(group: groups.Group, g: jax.Array, x: jax.Array) -> jax.Array:
    """One element ``g`` acting on every map of x (N, h, w, c)."""
    return jax.vmap(group.act, in_axes=(None, 0))(g, x)


def mean_over_non_identity(values: jax.Array, group: groups.Group | str) -> jax.Array:
    """Mean of per-element values (..., |G|) over the non-identity elements; 0 for the trivial group.

    Every map is invariant and equivariant under the one-element group, hence the 0.
    """
    group = groups.get(group)
    mask = np.arange(group.order) != _identity_index(group)
    if not mask.any():
        return jnp.zeros(values.shape[:-1], values.dtype)
    return jnp.mean(values[..., mask], axis=-1)


# --- invariance ----------------------------------------------------------------------------


def invariance_error(
    phi: FeatureFn, group: groups.Group | str, x: jax.Array, *, batch_size: int = 32, eps: float = 1e-8
) -> dict[str, jax.Array]:
    """Per layer, (|G|,): mean over images of ||phi(g x) - phi(x)|| / max(||phi(x)||, eps).

    x (N, H, W, C). Norms are over all of one image's activation (Frobenius for feature
    maps). ``eps`` guards images whose activation is exactly zero. The orbit is a ``vmap``
    over the group, so ``phi`` sees ``batch_size * |G|`` images at a time.
    """
    where = "invariance_error"
    group = groups.get(group)
    x = _check_images(x, where)
    group.check_image(x.shape, where)
    arrays.as_int(batch_size, where, "batch_size")
    arrays.as_float(eps, where, "eps", positive=True)
    _feature_shapes(phi, x, min(batch_size, x.shape[0]), where)
    e = _identity_index(group)

    def chunk_errors(chunk):
        b = chunk.shape[0]
        orbit = groups.orbit(group, chunk)  # (B, G, H, W, C)
        feats = phi(orbit.reshape((b * group.order,) + chunk.shape[1:]))
        errors = {}
        for name, a in feats.items():
            a = a.reshape(b, group.order, -1)
            base = a[:, e : e + 1]
            diff = jnp.linalg.norm(a - base, axis=-1)
            errors[name] = diff / jnp.maximum(jnp.linalg.norm(base, axis=-1), eps)
        return errors

    per_image = map_chunks(chunk_errors, x, batch_size)
    return {name: jnp.mean(err, axis=0) for name, err in per_image.items()}


# --- equivariance (Lenc & Vedaldi 2015) ----------------------------------------------------


class EquivarianceError(NamedTuple):
    """Lenc-Vedaldi equivariance error. per_element: layer -> (|G|,); mean: layer -> () over g != e."""

    per_element: dict[str, jax.Array]
    mean: dict[str, jax.Array]


def equivariance_error(
    phi: FeatureFn,
    group: groups.Group | str,
    x_fit: jax.Array,
    x_eval: jax.Array,
    *,
    ridge: float = 1e-3,
    batch_size: int = 32,
    eps: float = 1e-8,
) -> EquivarianceError:
    """Held-out residual of the best linear map M_g with phi(g x) ~ M_g(g . phi(x)).

    x_fit (N, H, W, C) fits M_g by ridge least squares (``classifiers.ridge_predict`` with a
    relative penalty: ``ridge`` times the mean eigenvalue of the centred Gram matrix);
    x_eval (M, H, W, C) measures it. For a feature map (N, h, w, c),
    g . acts on the map spatially and M_g is a 1x1 channel mix (c x c plus bias) fitted over
    all positions; for a vector (N, d), g . is the identity and M_g is d x d plus bias.
    Error = ||target - prediction||^2 / max(||target - mean(target)||^2, eps) on x_eval:
    0 is exactly equivariant, 1 is no better than predicting the mean, above 1 the fitted
    map generalises worse than the mean. With fewer fit rows than dimensions (wide vector
    layers, few images) even the identity element is not fitted exactly; its entry in
    ``per_element`` is that floor.
    """
    where = "equivariance_error"
    group = groups.get(group)
    x_fit = _check_images(x_fit, where)
    x_eval = _check_images(x_eval, where)
    if x_fit.shape[1:] != x_eval.shape[1:]:
        raise ValueError(
            f"{where}: expected x_fit and x_eval of the same image shape, got {x_fit.shape} and {x_eval.shape}"
        )
    if min(x_fit.shape[0], x_eval.shape[0]) < 2:
        raise ValueError(
            f"{where}: expected at least 2 images in x_fit and in x_eval, got {x_fit.shape[0]} and {x_eval.shape[0]}"
        )
    group.check_image(x_fit.shape, where)
    arrays.as_int(batch_size, where, "batch_size")
    arrays.as_float(ridge, where, "ridge", positive=True)
    arrays.as_float(eps, where, "eps", positive=True)
    shapes = _feature_shapes(phi, x_fit, min(batch_size, x_fit.shape[0]), where)
    for name, shape in shapes.items():
        if len(shape) != 3:
            continue
        if group.square_only and shape[0] != shape[1]:
            raise ValueError(
                f"{where}: group {group.name!r} acts only on square feature maps, "
                f"got layer {name!r} of shape (N, {', '.join(map(str, shape))}); use square images or a group "
                "without quarter turns (flip, none)"
            )
        try:
            jax.eval_shape(group.act, 0, jax.ShapeDtypeStruct(shape, x_fit.dtype))
        except ValueError as err:
            raise ValueError(f"{where}: group {group.name!r} cannot act on layer {name!r}: {err}") from err

    base_fit = map_chunks(phi, x_fit, batch_size)
    base_eval = map_chunks(phi, x_eval, batch_size)

    def rows(a):
        return a.reshape(-1, a.shape[-1])

    def one_element(g):
        target_fit = map_chunks(lambda c: phi(_act_each(group, g, c)), x_fit, batch_size)
        target_eval = map_chunks(lambda c: phi(_act_each(group, g, c)), x_eval, batch_size)
        errors = {}
        for name, base in base_fit.items():
            if base.ndim == 4:
                source_fit = rows(_act_each(group, g, base))
                source_eval = rows(_act_each(group, g, base_eval[name]))
                t_fit, t_eval = rows(target_fit[name]), rows(target_eval[name])
            else:
                source_fit, source_eval = base, base_eval[name]
                t_fit, t_eval = target_fit[name], target_eval[name]
            prediction = classifiers.ridge_predict(source_fit, t_fit, source_eval, alpha=ridge, relative=True)
            residual = jnp.sum(jnp.square(t_eval - prediction))
            spread = jnp.sum(jnp.square(t_eval - jnp.mean(t_eval, axis=0, keepdims=True)))
            errors[name] = residual / jnp.maximum(spread, eps)
        return errors

    per_element = jax.lax.map(one_element, jnp.arange(group.order))
    mean = {name: mean_over_non_identity(v, group) for name, v in per_element.items()}
    return EquivarianceError(per_element, mean)


# --- Lie derivative (Gruver et al. 2023) ---------------------------------------------------


class Network(NamedTuple):
    """A feature function split at the network's own input: phi(x) = layers(prepare(x)).

    prepare  images (N, H, W, C) -> the input the network sees (N, H', W', C'): its resizing
             and normalisation (None: the images themselves). The Lie derivative rotates this.
    layers   network input -> {layer: activation}
    scores   network input -> class scores (N, K), for ``e2e_lie_derivative`` (None: none)
    """

    layers: FeatureFn
    prepare: Callable[[jax.Array], jax.Array] | None = None
    scores: Callable[[jax.Array], jax.Array] | None = None


def rotate(x: jax.Array, angle: jax.Array | float) -> jax.Array:
    """Images x (B, H, W, C) rotated by ``angle`` radians counter-clockwise about their centre,
    bilinear, mirror padding (a sample past the edge reads the pixel mirrored about the edge
    pixel, d c b | a b c d | c b a: Gruver et al.'s "reflection"), differentiable in ``angle``."""
    b, h, w, c = x.shape
    angle = jnp.asarray(angle, x.dtype)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=x.dtype), jnp.arange(w, dtype=x.dtype), indexing="ij")
    # Output pixel (y, x) reads the input at the inversely rotated place; rows grow downwards
    # (the sign convention of ``groups.rotate``).
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    src_y = cy + cos * (yy - cy) + sin * (xx - cx)
    src_x = cx - sin * (yy - cy) + cos * (xx - cx)

    def plane(p):
        return jax.scipy.ndimage.map_coordinates(p, [src_y, src_x], order=1, mode="mirror")

    planes = jnp.moveaxis(x, -1, 1).reshape(b * c, h, w)
    return jnp.moveaxis(jax.vmap(plane)(planes).reshape(b, c, h, w), 1, -1)


def _symmetric(rotation: Callable[[jax.Array, jax.Array], jax.Array]) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``rotation`` written so that its derivative in the angle at 0 is the central one.

    At angle 0 every bilinear sample sits exactly on a pixel, where interpolation has a kink;
    JAX differentiates ``floor`` as 0, so ``jvp`` through the rotation alone returns the slope
    of the cell on the +1 side of each pixel. Rotation about the centre commutes with the half
    turn x[::-1, ::-1] (zero and mirror padding alike), and in the half-turned frame that cell
    lies on the -1 side: the average of the two (equal as functions of the angle) has the
    central-difference slope, which is what (f(h) - f(-h)) / 2h converges to.
    """
    def path(x, t):
        return 0.5 * (rotation(x, t) + rotation(x[:, ::-1, ::-1], t)[:, ::-1, ::-1])

    return path


_rotation_path = _symmetric(jax.vmap(groups.rotate, in_axes=(0, None)))  # zero padding: invariance_rate
_mirror_path = _symmetric(rotate)  # mirror padding: the Lie derivative


def _networks(phi, networks, where: str) -> tuple[Network, ...]:
    if networks is None:
        return (Network(phi),)
    networks = tuple(networks)
    if not networks or not all(isinstance(n, Network) and callable(n.layers) for n in networks):
        raise TypeError(f"{where}: expected networks as a non-empty sequence of metrics.Network, got {networks!r:.120}")
    return networks


def _lie_chunk(network: Network, chunk: jax.Array, eps: float) -> dict[str, jax.Array]:
    """Per image of a chunk (B, H, W, C): ||L phi|| / max(||phi||, eps) for every layer of ``network``."""
    u = chunk if network.prepare is None else network.prepare(chunk)
    if u.ndim != 4:
        raise ValueError(f"lie_derivative: expected prepare to give network inputs (N, H, W, C), got shape {u.shape}")

    def along(t):
        out = network.layers(_mirror_path(u, t))
        # rho_out(-t): a spatial map is rotated back on its own grid; a vector is left as it is.
        return {name: _mirror_path(a, -t) if a.ndim == 4 else a for name, a in out.items()}

    zero, one = jnp.zeros((), u.dtype), jnp.ones((), u.dtype)
    value, tangent = jax.jvp(along, (zero,), (one,))
    return {
        name: jnp.linalg.norm(_flat(tangent[name]), axis=-1) / jnp.maximum(jnp.linalg.norm(_flat(value[name]), axis=-1), eps)
        for name in value
    }


def lie_derivative(
    phi: FeatureFn, x: jax.Array, *, prepare: Callable[[jax.Array], jax.Array] | None = None, batch_size: int = 32,
    eps: float = 1e-8,
) -> dict[str, jax.Array]:
    """Per layer, (): mean over images of ||L phi(u)|| / max(||phi(u)||, eps), Gruver et al.'s Lie
    derivative along rotation, relative to the layer's norm.

    L phi(u) = d/dt [rho_out(-t) phi(rho_in(t) u)] at t = 0, by one ``jax.jvp`` per chunk, with
    u = prepare(x) the network's own input (x itself without ``prepare``): phi (network input
    (N, H', W', C') -> {layer: activation}) sees u rotated by t radians about its centre
    (bilinear, mirror padding: ``rotate``), and a spatial output (N, h, w, c) is rotated back by
    -t on its own grid, so an exactly rotation-equivariant map (the identity, a 1x1 channel mix)
    scores 0 and an invariant vector scores 0. A vector output (N, d) is not rotated back: for
    it L is the rate of change, and 0 means invariant. Per radian; the interpolation's kink at
    t = 0 is differentiated centrally (``_symmetric``). x (N, H, W, C), any H and W.
    """
    where = "lie_derivative"
    x = _check_images(x, where)
    arrays.as_int(batch_size, where, "batch_size")
    arrays.as_float(eps, where, "eps", positive=True)
    if prepare is not None and not callable(prepare):
        raise TypeError(f"{where}: expected prepare a callable or None, got {type(prepare).__name__}")
    network = Network(phi, prepare)
    probe = x if prepare is None else jax.eval_shape(prepare, jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype))
    _feature_shapes(phi, probe, 1, where)
    per_image = map_chunks(lambda chunk: _lie_chunk(network, chunk, eps), x, batch_size)
    return {name: jnp.mean(rate) for name, rate in per_image.items()}


def e2e_lie_derivative(
    scores: Callable[[jax.Array], jax.Array], x: jax.Array, *, prepare: Callable[[jax.Array], jax.Array] | None = None,
    batch_size: int = 32,
) -> jax.Array:
    """(): Gruver et al.'s end-to-end Lie derivative along rotation: the mean over images of the mean
    over classes of |L softmax(scores(u))|, u = prepare(x) the network's input rotated as in
    ``lie_derivative``. Not normalised: probabilities change by this much per radian.
    scores: network input (N, H', W', C') -> class scores (N, K).
    """
    where = "e2e_lie_derivative"
    x = _check_images(x, where)
    arrays.as_int(batch_size, where, "batch_size")
    if not callable(scores):
        raise TypeError(f"{where}: expected scores a callable, got {type(scores).__name__}")
    probe = x if prepare is None else jax.eval_shape(prepare, jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype))
    out = jax.eval_shape(scores, jax.ShapeDtypeStruct((1,) + probe.shape[1:], probe.dtype))
    if len(getattr(out, "shape", ())) != 2:
        raise ValueError(f"{where}: expected scores of shape (N, K), got {getattr(out, 'shape', type(out).__name__)}")

    def chunk_values(chunk):
        u = chunk if prepare is None else prepare(chunk)
        zero, one = jnp.zeros((), u.dtype), jnp.ones((), u.dtype)
        _, tangent = jax.jvp(lambda t: jax.nn.softmax(scores(_mirror_path(u, t)), axis=-1), (zero,), (one,))
        return jnp.mean(jnp.abs(tangent), axis=-1)

    return jnp.mean(map_chunks(chunk_values, x, batch_size))


def invariance_rate(
    phi: FeatureFn, x: jax.Array, *, batch_size: int = 32, eps: float = 1e-8
) -> dict[str, jax.Array]:
    """Per layer, (): mean over images of ||d/dt phi(rotate(x, t))|_{t=0}|| / max(||phi(x)||, eps).

    How fast a layer changes along a continuous rotation of the data set's image x (N, H, W, C)
    (``groups.rotate``: bilinear, zero outside), per radian, relative to its norm; 0 means
    invariant to infinitesimal rotation. Unlike ``lie_derivative`` nothing is rotated back, so a
    spatial map that rotates with its input (an equivariant one) scores high, not 0. (This was
    ``lie_derivative`` before glassjax followed Gruver et al.'s definition.)
    """
    where = "invariance_rate"
    x = _check_images(x, where)
    arrays.as_int(batch_size, where, "batch_size")
    arrays.as_float(eps, where, "eps", positive=True)
    _feature_shapes(phi, x, min(batch_size, x.shape[0]), where)

    def chunk_rates(chunk):
        zero = jnp.zeros((), chunk.dtype)
        one = jnp.ones((), chunk.dtype)
        value, tangent = jax.jvp(lambda t: phi(_rotation_path(chunk, t)), (zero,), (one,))
        return {
            name: jnp.linalg.norm(_flat(tangent[name]), axis=-1)
            / jnp.maximum(jnp.linalg.norm(_flat(value[name]), axis=-1), eps)
            for name in value
        }

    per_image = map_chunks(chunk_rates, x, batch_size)
    return {name: jnp.mean(rate) for name, rate in per_image.items()}


# --- separability --------------------------------------------------------------------------


def _is_concrete(a) -> bool:
    return not isinstance(a, jax.core.Tracer)


def _check_features(features, where: str, name: str = "features") -> jax.Array:
    if not hasattr(features, "shape") or not hasattr(features, "dtype"):
        raise TypeError(f"{where}: expected {name} as an array (N, D), got {type(features).__name__}")
    features = jnp.asarray(features)
    if features.ndim < 2 or features.shape[0] == 0:
        raise ValueError(f"{where}: expected {name} of shape (N, D) with N >= 1, got shape {features.shape}")
    if not jnp.issubdtype(features.dtype, jnp.floating):
        raise TypeError(f"{where}: expected floating-point {name}, got dtype {features.dtype}")
    return _flat(features)


def _check_labels(labels, n: int, where: str, name: str = "labels") -> jax.Array:
    # Any integers: _class_indices renumbers them, so their values are not checked here.
    return jnp.asarray(arrays.as_labels(labels, n, where, name=name, check_values=False))


def _class_indices(label_sets: list[jax.Array], num_classes: int | None, where: str) -> tuple[list[jax.Array], int]:
    """Labels -> indices in [0, K). Concrete labels without num_classes are renumbered by sorted value."""
    if num_classes is not None:
        num_classes = arrays.as_int(num_classes, where, "num_classes", 2)
        for labels in label_sets:
            arrays.as_labels(labels, labels.shape[0], where, num_classes=num_classes)  # values in range, when concrete
        return label_sets, num_classes
    if not all(_is_concrete(labels) for labels in label_sets):
        raise ValueError(f"{where}: expected num_classes when labels are traced (under jit), got None")
    values = np.unique(np.concatenate([np.asarray(labels) for labels in label_sets]))
    if values.size < 2:
        raise ValueError(f"{where}: expected at least two classes, got one class (label {values[0]})")
    return [jnp.asarray(np.searchsorted(values, np.asarray(labels)), jnp.int32) for labels in label_sets], int(values.size)


def _require_two_classes(labels: jax.Array, where: str) -> None:
    if _is_concrete(labels):
        present = np.unique(np.asarray(labels))
        if present.size < 2:
            raise ValueError(f"{where}: expected at least two classes, got one class (label {present[0]})")


def separability(features: jax.Array, labels: jax.Array, *, num_classes: int | None = None) -> dict[str, jax.Array]:
    """Class geometry of features (N, D) (trailing axes are flattened) with labels (N,).

    - intra_class_distance: mean over samples of ||f_i - mu_{y_i}||;
    - inter_class_distance: mean over unordered pairs of classes present of ||mu_k - mu_l||;
    - fisher_ratio: tr(S_b) / tr(S_w), S_b = sum_k n_k (mu_k - mu)(mu_k - mu)^T, S_w the
      pooled within-class scatter (inf when every sample sits on its centroid).
    Labels are any integers (renumbered in sorted order); under jit pass ``num_classes`` and
    labels in [0, num_classes).
    """
    where = "separability"
    f = _check_features(features, where)
    labels = _check_labels(labels, f.shape[0], where)
    _require_two_classes(labels, where)
    (y,), k = _class_indices([labels], num_classes, where)

    # Centring on the global mean leaves every distance unchanged and keeps float32 sums
    # of squares well-scaled; it also makes mu = 0 in S_b.
    f = f - jnp.mean(f, axis=0, keepdims=True)
    onehot = jax.nn.one_hot(y, k, dtype=f.dtype)  # (N, K)
    counts = jnp.sum(onehot, axis=0)
    present = counts > 0
    centroids = jnp.matmul(onehot.T, f, precision=_HIGHEST) / jnp.maximum(counts, 1.0)[:, None]
    within = jnp.sum(jnp.square(f - jnp.matmul(onehot, centroids, precision=_HIGHEST)), axis=1)
    between = jnp.sum(counts * jnp.sum(jnp.square(centroids), axis=1))

    # One centroid at a time keeps memory at K x D instead of K x K x D.
    distances = jax.lax.map(lambda m: jnp.linalg.norm(centroids - m[None], axis=1), centroids)  # (K, K)
    pairs = present[:, None] & present[None, :] & jnp.asarray(np.triu(np.ones((k, k), bool), 1))
    inter = jnp.sum(jnp.where(pairs, distances, 0.0)) / jnp.maximum(jnp.sum(pairs), 1).astype(f.dtype)
    return {
        "intra_class_distance": jnp.mean(jnp.sqrt(within)),
        "inter_class_distance": inter,
        "fisher_ratio": between / jnp.sum(within),
    }


def linear_probe_accuracy(
    f_train: jax.Array,
    y_train: jax.Array,
    f_test: jax.Array,
    y_test: jax.Array,
    *,
    ridge: float = 1e-3,
    num_classes: int | None = None,
) -> jax.Array:
    """Test accuracy () of a closed-form ridge classifier fitted to one-hot targets.

    f_train (N, D), f_test (M, D) (trailing axes flattened), integer labels. The penalty is
    scaled like ``equivariance_error``'s; classes absent from the training set are never
    predicted. Under jit pass ``num_classes`` and labels in [0, num_classes).
    """
    where = "linear_probe_accuracy"
    f_train = _check_features(f_train, where, "f_train")
    f_test = _check_features(f_test, where, "f_test")
    if f_train.shape[1] != f_test.shape[1]:
        raise ValueError(
            f"{where}: expected f_train and f_test with the same feature size, got {f_train.shape[1]} and {f_test.shape[1]}"
        )
    y_train = _check_labels(y_train, f_train.shape[0], where, "y_train")
    y_test = _check_labels(y_test, f_test.shape[0], where, "y_test")
    _require_two_classes(y_train, where)
    arrays.as_float(ridge, where, "ridge", positive=True)
    (y_train, y_test), k = _class_indices([y_train, y_test], num_classes, where)

    onehot = jax.nn.one_hot(y_train, k, dtype=f_train.dtype)
    scores = classifiers.ridge_predict(f_train, onehot, f_test, alpha=ridge, relative=True)
    seen = jnp.sum(onehot, axis=0) > 0
    predicted = jnp.argmax(jnp.where(seen[None], scores, -jnp.inf), axis=1)
    return jnp.mean((predicted == y_test).astype(f_train.dtype))


# --- the per-layer table -------------------------------------------------------------------


def layer_report(
    phi: FeatureFn,
    group: groups.Group | str,
    x_fit: jax.Array,
    x_eval: jax.Array,
    y_eval: jax.Array,
    *,
    y_fit: jax.Array | None = None,
    ridge: float = 1e-3,
    batch_size: int = 32,
    networks: Sequence[Network] | None = None,
) -> list[dict]:
    """One row per layer (sorted by name) of every metric, as plain Python values.

    Invariance error, invariance rate, Lie derivative and separability are measured on x_eval
    (N, H, W, C) with labels y_eval (N,); the equivariance maps are fitted on x_fit and
    measured on x_eval. Group metrics are means over the non-identity elements, with the
    per-element values beside them; ``equivariance_error_identity`` is the fit's floor (see
    ``equivariance_error``). Feature maps are flattened for separability. When y_fit is given,
    ``linear_probe_accuracy`` trains on phi(x_fit) and tests on phi(x_eval).

    ``networks`` split phi at each network's own input (``Network``): together their layers
    are phi's, and the Lie derivative rotates each network's input (without them: phi's input,
    the images). The rows of a network with scores also carry its ``e2e_lie_derivative``.
    """
    where = "layer_report"
    group = groups.get(group)
    x_fit = _check_images(x_fit, where)
    x_eval = _check_images(x_eval, where)
    # Label problems surface before the expensive passes, not after them.
    y_eval = _check_labels(y_eval, x_eval.shape[0], where, "y_eval")
    _require_two_classes(y_eval, where)
    if y_fit is not None:
        y_fit = _check_labels(y_fit, x_fit.shape[0], where, "y_fit")
        _require_two_classes(y_fit, where)

    networks = _networks(phi, networks, where)
    invariance = invariance_error(phi, group, x_eval, batch_size=batch_size)
    equivariance = equivariance_error(phi, group, x_fit, x_eval, ridge=ridge, batch_size=batch_size)
    rate = invariance_rate(phi, x_eval, batch_size=batch_size)
    lie, e2e = {}, {}
    for network in networks:
        values = lie_derivative(network.layers, x_eval, prepare=network.prepare, batch_size=batch_size)
        lie.update(values)
        if network.scores is not None:
            whole = float(e2e_lie_derivative(network.scores, x_eval, prepare=network.prepare, batch_size=batch_size))
            e2e.update(dict.fromkeys(values, whole))
    if set(lie) != set(invariance):
        raise ValueError(f"{where}: expected the networks' layers to be phi's, {sorted(invariance)}, got {sorted(lie)}")
    feats_eval = map_chunks(phi, x_eval, batch_size)
    feats_fit = map_chunks(phi, x_fit, batch_size) if y_fit is not None else None

    rows = []
    for name in sorted(invariance):
        sep = separability(feats_eval[name], y_eval)
        row = {
            "name": name,
            "shape": list(feats_eval[name].shape[1:]),
            "invariance_error": float(mean_over_non_identity(invariance[name], group)),
            "equivariance_error": float(equivariance.mean[name]),
            "equivariance_error_identity": float(equivariance.per_element[name][_identity_index(group)]),
            "lie_derivative": float(lie[name]),
            "invariance_rate": float(rate[name]),
            "intra_class_distance": float(sep["intra_class_distance"]),
            "inter_class_distance": float(sep["inter_class_distance"]),
            "fisher_ratio": float(sep["fisher_ratio"]),
            "invariance_per_element": [float(v) for v in invariance[name]],
            "equivariance_per_element": [float(v) for v in equivariance.per_element[name]],
        }
        if name in e2e:
            row["e2e_lie_derivative"] = e2e[name]
        if feats_fit is not None:
            row["linear_probe_accuracy"] = float(
                linear_probe_accuracy(feats_fit[name], y_fit, feats_eval[name], y_eval, ridge=ridge)
            )
        rows.append(row)
    return rows
