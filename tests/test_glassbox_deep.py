"""The deep glass-box: the lifted-domain law of every layer against a float64 numpy recomputation,
invariance of the top, filters against numpy / scikit-learn references, the model file, bad configs."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from glassjax import data, systems
from glassjax.analysis import testing
from glassjax.core import groups, reduction
from glassjax.systems.glassbox_deep import criteria, lifted, model
from glassjax.systems.glassbox_deep.config import DeepGlassBoxConfig
from glassjax.systems.glassbox_deep.fit import fit

jax.config.update("jax_enable_x64", False)

# Tiny: 2 digit classes, 8 x 8, two layers of 2 and 3 filters, the top reading both (multiscale).
TINY = DeepGlassBoxConfig(widths=(2, 3), kernel_sizes=(3, 3), downsample=(1, 2), rho="relu_pair", criterion="fisher",
                          multiscale=True,
                          filter_images=20, patches_per_image=8, pool_dim=6, orbit_dim=4, components=12,
                          poolings=("mean", "max", "bilinear", "irrep"), representation="both", batch_size=32)


@pytest.fixture(scope="module")
def tiny():
    ds = data.load("digits", classes=["3", "8"])
    x, y = ds.x_train[:60], ds.y_train[:60]
    params = fit(TINY, x, y, key=jax.random.key(0), class_names=ds.class_names)
    return ds._replace(x_train=x, y_train=y, x_test=ds.x_test[:12], y_test=ds.y_test[:12]), params


# --- the numpy float64 reference -------------------------------------------------------------


def np_act(group, u, a):
    """T_u on an array (h, w, ...): groups' convention, rot90 after an optional left-right flip."""
    r, f = (int(v) for v in group.elements[u])
    return np.rot90(a[:, ::-1] if f else a, k=r, axes=(0, 1))


def np_act_lifted(group, u, f):
    """(L_u F)[g] = T_u F[u^-1 g] for f (h, w, |G|, C)."""
    inv = group.inverse[u]
    return np_act(group, u, f[:, :, group.cayley_table[inv]])


def np_layer(group, psi, bias, maps, rho, downsample):
    """One layer in float64 loops: maps (h, h, Gin, Cin) -> (h', h', |G|, C'), straight from the definition
    out[g](p) = sum_{h, q} F[h](p + q) (T_g psi[g^-1 h])(q) (no expand(), no convolution routine)."""
    psi = np.asarray(psi, np.float64)
    fcount, k, _, g_in, c_in = psi.shape
    pad = (k - 1) // 2
    side = maps.shape[0]
    padded = np.pad(maps, ((pad, pad), (pad, pad), (0, 0), (0, 0)))
    out = np.zeros((side, side, group.order, fcount))
    for g in range(group.order):
        for j in range(fcount):
            kernel = np.transpose(psi[j], (0, 1, 2, 3))  # (k, k, Gin, Cin)
            moved = np_act(group, g, kernel)
            if g_in > 1:
                moved = moved[:, :, group.cayley_table[group.inverse[g]]]
            for a in range(side):
                for b in range(side):
                    out[a, b, g, j] = np.sum(padded[a : a + k, b : b + k] * moved)
    out = out - np.asarray(bias, np.float64)
    out = np.concatenate([np.maximum(out, 0), np.maximum(-out, 0)], -1) if rho == "relu_pair" else np.abs(out)
    if downsample == 2:
        half = -(-side // 2)
        bins = np.zeros((half, side))
        edges = np.linspace(0, side, half + 1)
        for i in range(half):
            for p in range(side):
                bins[i, p] = max(0.0, min(edges[i + 1], p + 1) - max(edges[i], p)) / (edges[i + 1] - edges[i])
        out = np.einsum("ih,hwgc,jw->ijgc", bins, out, bins)
    return out


def np_stack(params, image):
    group = params.group
    maps = np.asarray(image, np.float64)[:, :, None, :]
    out = []
    for l, (psi, bias) in enumerate(zip(params.filters, params.biases)):
        maps = np_layer(group, psi, bias, maps, params.config.rho, params.config.downsample[l])
        out.append(maps)
    return out


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def test_layers_match_the_float64_reference(tiny):
    ds, params = tiny
    maps = model.lifted_maps(params, jnp.asarray(ds.x_test[:2]))
    for i in range(2):
        for got, ref in zip(maps, np_stack(params, ds.x_test[i])):
            # float32 correlation against float64: rounding of a few hundred products
            assert _rel(np.asarray(got[i]).reshape(ref.shape), ref) < 1e-5


def test_the_reference_obeys_the_lifting_law_for_every_element(tiny):
    ds, params = tiny
    group = params.group
    x = np.asarray(ds.x_test[0], np.float64)
    base = np_stack(params, x)
    for u in range(group.order):
        moved = np_stack(params, np_act(group, u, x))
        for f, f_moved in zip(base, moved):
            assert _rel(f_moved, np_act_lifted(group, u, f)) < 1e-12  # float64: an identity up to rounding


def test_every_layer_is_equivariant_and_the_top_invariant(tiny):
    ds, params = tiny
    group = params.group
    x = jnp.asarray(ds.x_test[:4])
    layers = jax.jit(model.layers)
    base = layers(params, x)
    names = model.layer_names(len(params.filters))
    for u in range(group.order):
        moved_x = groups.act_batch(group, jnp.full((4,), u, jnp.int32), x)
        moved = layers(params, moved_x)
        for name in names:
            f = np.asarray(base[name]).reshape(base[name].shape[:3] + (group.order, -1))
            expected = np.stack([np_act_lifted(group, u, fi) for fi in f]).reshape(base[name].shape)
            assert _rel(moved[name], expected) < 1e-6, (u, name)
        # float32 rounding of the convolutions, carried through the whitened projection: measured 3e-7
        assert _rel(moved["invariant"], base["invariant"]) < 1e-6, u
        e_moved, e = model.responses(params, moved_x), model.responses(params, x)
        assert _rel(e_moved, np.asarray(e)[:, group.cayley_table[:, u]]) < 1e-6  # E(act(u, x))[g] = E(x)[g u]


def test_the_library_assertions_hold_at_every_layer(tiny):
    """testing.assert_equivariant with the lifted action on every lifted layer, assert_invariant on the
    invariant layer; both fail on the orbit layer, which is neither."""
    ds, params = tiny
    x = jnp.asarray(ds.x_test[:4])
    layers = jax.jit(model.layers)
    for name in model.layer_names(len(params.filters)):
        testing.assert_equivariant(lambda a, name=name: layers(params, a)[name], "d4", x, lifted=True, norm_rtol=1e-6)
    testing.assert_invariant(lambda a: layers(params, a)["invariant"], "d4", x, norm_rtol=1e-6)
    with pytest.raises(AssertionError, match="is not invariant"):
        testing.assert_invariant(lambda a: layers(params, a)["orbit"], "d4", x, norm_rtol=1e-3)
    with pytest.raises(AssertionError, match="is not equivariant"):  # the orbit's group axis is the right-regular one
        testing.assert_equivariant(lambda a: layers(params, a)["orbit"].reshape(4, 1, 1, -1), "d4", x, lifted=True,
                                   norm_rtol=1e-3)


@pytest.mark.parametrize("spec", ["c4", "flip"])
def test_subgroup_layers_are_equivariant(spec):
    """Random filters (the law holds for any): a lifting and a group-conv layer, then the top."""
    group = groups.get(spec)
    keys = jax.random.split(jax.random.key(2), 3)
    lift = jax.random.normal(keys[0], (2, 3, 3, 1, 1))
    conv = jax.random.normal(keys[1], (3, 3, 3, group.order, 4))
    x = jax.random.uniform(keys[2], (2, 7, 7, 1))

    def stack(images):
        first = lifted.lifted_layer(group, lift, jnp.full((2,), 0.1), images, rho="relu_pair", downsample=1)
        second = lifted.lifted_layer(group, conv, jnp.zeros((3,)), first, rho="abs", downsample=2)
        return first, second, lifted.canonical_responses(group, second, 2)

    base = stack(x)
    for u in range(group.order):
        moved = stack(groups.act_batch(group, jnp.full((2,), u, jnp.int32), x))
        for got, f in zip(moved[:2], base[:2]):
            f = np.asarray(f).reshape(f.shape[:3] + (group.order, -1))
            assert _rel(got, np.stack([np_act_lifted(group, u, fi) for fi in f]).reshape(got.shape)) < 1e-6
        assert _rel(moved[2], np.asarray(base[2])[:, group.cayley_table[:, u]]) < 1e-6


def test_expand_is_the_group_convolution_kernel():
    group = groups.get("d4")
    psi = jax.random.normal(jax.random.key(0), (2, 3, 3, 8, 2))
    kernel = np.asarray(lifted.expand(group, psi)).reshape(3, 3, 8, 2, 8, 2)
    for g in range(8):
        for j in range(2):
            np.testing.assert_array_equal(kernel[:, :, :, :, g, j], np_act_lifted(group, g, np.asarray(psi[j])))


# --- filters against references ------------------------------------------------------------------


def _augmented(patches, permutations):
    return np.concatenate([patches[:, p] for p in permutations])


def _projector(rows):
    q = np.linalg.qr(np.asarray(rows, np.float64).T)[0]
    return q @ q.T


def _stats(patches, labels, permutations, centre=False):
    moments = []
    for c in range(labels.max() + 1):
        acc = reduction.HostMoments(patches.shape[1])
        acc.add(patches[labels == c])
        moments.append(acc.moments())
    return criteria.symmetrise(moments, permutations, centre_patches=centre)


def test_pca_filters_match_scikit_learn_on_the_moved_patches():
    rng = np.random.default_rng(0)
    perms = lifted.patch_permutations(groups.get("d4"), 3, 8, 1)
    patches = rng.normal(size=(400, 72)) * np.linspace(2, 0.1, 72)
    labels = np.repeat([0, 1], 200)
    bank = criteria.fit_bank(_stats(patches, labels, perms), "pca", 6)
    reference = SkPCA(bank.filters.shape[0], svd_solver="full").fit(_augmented(patches, perms))
    np.testing.assert_allclose(_projector(bank.filters), _projector(reference.components_), atol=1e-4)
    assert bank.filters.shape[0] <= 6
    np.testing.assert_allclose(bank.bias, bank.filters @ _augmented(patches, perms).mean(0), rtol=1e-4, atol=1e-5)


def test_fisher_filters_match_the_generalized_eigenvectors_of_the_moved_patches():
    import scipy.linalg

    rng = np.random.default_rng(1)
    perms = lifted.patch_permutations(groups.get("d4"), 3, 1, 1)
    labels = np.repeat([0, 1], 300)
    patches = rng.normal(size=(600, 9)) + labels[:, None] * np.linspace(0, 1, 9)
    bank = criteria.fit_bank(_stats(patches, labels, perms), "fisher", 4, shrinkage=0.1)
    moved, moved_labels = _augmented(patches, perms), np.tile(labels, len(perms))
    mean = moved.mean(0)
    within = sum(np.cov(moved[moved_labels == c].T, ddof=0) * np.mean(moved_labels == c) for c in (0, 1))
    shrunk = 0.9 * within + 0.1 * np.trace(within) / 9 * np.eye(9)
    for c in (0, 1):
        rows = moved[moved_labels == c] - mean
        values, vectors = scipy.linalg.eigh(rows.T @ rows / rows.shape[0], shrunk)
        kept = bank.filters[bank.classes == c]
        np.testing.assert_allclose(_projector(kept), _projector(vectors[:, ::-1][:, : kept.shape[0]].T), atol=1e-4)


def test_a_degenerate_pair_is_never_cut():
    values = np.array([5.0, 3.0, 3.0, 1.0])
    assert criteria._whole_blocks(values, 2) == 1
    assert criteria._whole_blocks(values, 3) == 3
    assert criteria._whole_blocks(np.array([3.0, 3.0, 1.0]), 1) == 2


# --- the system -------------------------------------------------------------------------------


def test_registered_and_round_trip(tiny, tmp_path):
    ds, params = tiny
    system = systems.get("glassbox_deep")
    assert "glassbox_deep" in systems.names()
    path = tmp_path / "deep.npz"
    system.save(params, path)
    loaded_system, loaded = systems.load(path)
    assert loaded_system is system and loaded.config == params.config
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(system.scores(params, ds.x_test), system.scores(loaded, ds.x_test))
    assert list(system.features(params, ds.x_test[:2])) == ["lift", "gconv2", "orbit", "invariant", "representation", "pca"]
    assert system.representation(params) == "representation"


def test_fit_through_the_protocol_scores_the_tiny_task(tiny):
    ds, _ = tiny
    system = systems.get("glassbox_deep")
    fields = {f.name: getattr(TINY, f.name) for f in dataclasses.fields(TINY)}
    params = system.fit(system.configure(**dict(fields, representation="invariant")), ds, key=jax.random.key(0))
    accuracy = np.mean(np.argmax(np.asarray(system.scores(params, ds.x_test)), 1) == ds.y_test)
    assert accuracy >= 0.9  # 3 vs 8 on 60 images: well separated
    # An invariant model's PCA features and scores are invariant to float32 rounding (measured ~3e-7).
    features = jax.jit(system.features)
    testing.assert_invariant(lambda a: features(params, a)["pca"], "d4", ds.x_test[:4], norm_rtol=1e-6)
    testing.assert_invariant(lambda a: system.scores(params, a), "d4", ds.x_test[:4], norm_rtol=1e-6)


def test_the_multiscale_top_reads_every_layer(tiny):
    ds, params = tiny
    maps = model.lifted_maps(params, jnp.asarray(ds.x_test[:2]))
    e = np.asarray(model.responses(params, jnp.asarray(ds.x_test[:2])))
    grid = params.config.grid
    parts = [np.asarray(lifted.canonical_responses(params.group, m, grid)) for m in maps]
    np.testing.assert_array_equal(e, np.concatenate(parts, axis=-1))
    channels = sum(2 * f.shape[0] for f in params.filters)  # relu_pair doubles each layer's channels
    assert e.shape == (2, 8, grid * grid * channels) and len(params.filters) == 2
    last = dataclasses.replace(params, config=dataclasses.replace(params.config, multiscale=False))
    np.testing.assert_array_equal(np.asarray(model.responses(last, jnp.asarray(ds.x_test[:2]))), parts[-1])


# --- accuracy floors of the defaults (measured: digits 0.983, lfw_faces 1.000, mnist5k 0.916;
# docs/deep_glassbox.md): a little below, so that a regression cannot pass silently ----------------


@pytest.mark.parametrize("name, floor, grid", [("digits", 0.975, 3), ("lfw_faces", 0.98, 2), ("mnist5k", 0.905, 4)])
def test_the_defaults_keep_their_accuracy_and_are_exactly_invariant(name, floor, grid):
    from glassjax.analysis import comparison, scoring

    ds = data.load(name, seed=0)
    fitted = comparison.fit("glassbox_deep", ds, seed=0)
    assert fitted.params.config.depth == 1 and fitted.params.config.grid == grid
    result = scoring.scores(comparison.predictor(fitted), ds.x_test, ds.y_test, group="d4", seed=0,
                            num_classes=ds.num_classes)
    assert result["accuracy"] >= floor, result["accuracy"]
    assert result["accuracy_transformed"] == result["accuracy"]  # exact invariance: not one prediction moves


@pytest.mark.parametrize("overrides, message", [
    (dict(kernel_sizes=(4, 3)), "expected odd kernel_sizes"),
    (dict(widths=(2,)), "of one length"),
    (dict(criterion="lda"), "expected criterion in pca|class_pca|fisher"),
    (dict(group="rot:8"), "expected group in d4|c4|flip|none"),
    (dict(downsample=(3, 2)), "expected downsample factors 1 or 2"),
    (dict(grid=9), "expected grid <= 4"),
    (dict(widths=(0, 2)), "positive ints"),
    (dict(poolings=("median",)), "expected poolings from"),
    (dict(shrinkage=2.0), "expected shrinkage in"),
])
def test_bad_config_is_one_clear_line(overrides, message):
    config = dataclasses.replace(TINY, **overrides)
    with pytest.raises(ValueError, match=message) as err:
        config.resolved((8, 8, 1), 60)
    assert "\n" not in str(err.value)


def test_command_line_strings_are_read_as_ints():
    config = dataclasses.replace(TINY, widths=("4", "8"), kernel_sizes=("3", "3"), downsample=("1", "2")).validated()
    assert config.widths == (4, 8) and config.kernel_sizes == (3, 3)
