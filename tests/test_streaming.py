"""Streaming fit: a batch source gives the model that the same data in memory gives; sources read lazily."""
import importlib
import json

import jax
import numpy as np
import pytest

from glassjax import cli
from glassjax import data
from glassjax.data import sources as streaming
from glassjax.systems.glassbox import GlassBox

SMALL = dict(filters_per_class=4, pool_dim=8, orbit_dim=8, components=20, classifier="ridge", batch_size=64)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", classes=["0", "1", "6", "9"])


def _ragged(x, y, sizes):
    """(x, y) cut into consecutive batches of the given sizes, uint8 like files on disk often are."""
    edges = np.cumsum([0] + sizes)
    assert edges[-1] == x.shape[0]
    pixels = np.round(x * 255).astype(np.uint8)
    return [(pixels[a:b], y[a:b]) for a, b in zip(edges[:-1], edges[1:])]


def test_fit_from_ragged_batches_equals_fit_from_arrays(digits):
    x, y = digits.x_train[:300], digits.y_train[:300]
    x = np.round(x * 255).astype(np.uint8).astype(np.float32) / 255  # what the uint8 batches hold
    sizes = [100, 7, 150, 43]
    from_arrays = GlassBox(**SMALL).fit(x, y)
    from_batches = GlassBox(**SMALL).fit(_ragged(x, y, sizes))
    # every image fits the per-class sample, in stream order: the same filters, bit for bit;
    # the ragged batches are re-cut into the batches the arrays are read in
    np.testing.assert_array_equal(from_batches.params_.patches.filters, from_arrays.params_.patches.filters)
    f_arrays, f_batches = from_arrays.transform(digits.x_test), from_batches.transform(digits.x_test)
    np.testing.assert_allclose(f_batches, f_arrays, rtol=1e-5, atol=1e-5 * np.abs(f_arrays).max())
    np.testing.assert_array_equal(from_batches.predict(digits.x_test), from_arrays.predict(digits.x_test))


def test_prototypes_from_a_source_are_the_group_averaged_class_means(digits):
    x, y = digits.x_train[:200], digits.y_train[:200]
    model = GlassBox(filters="prototype", **SMALL).fit([(x[:120], y[:120]), (x[120:], y[120:])])
    means = np.stack([x[y == c].mean(0) for c in range(4)])
    expected = np.mean([np.rot90(np.flip(means, 2) if f else means, r, axes=(1, 2)) for r in range(4) for f in (0, 1)], axis=0)
    np.testing.assert_allclose(model.params_.prototypes.filters, expected, rtol=1e-5, atol=1e-6)


def _counted_source(x, y, passes: list):
    """A generator function over batches of 90 rows of (x, y) that appends each pass's batch count to ``passes``."""

    def source():
        passes.append(0)
        for start in range(0, x.shape[0], 90):
            passes[-1] += 1
            yield x[start : start + 90], y[start : start + 90]

    return source


def test_a_generator_function_is_a_source_and_passes_are_bounded(digits):
    passes = []
    model = GlassBox(**dict(SMALL, classifier="logistic")).fit(_counted_source(digits.x_train, digits.y_train, passes))
    assert len(passes) == 4 and len(set(passes)) == 1  # survey, orbit, PCA, classifier; each reads everything
    assert model.score(digits.x_test, digits.y_test) > 0.9


def test_survey_keeps_a_bounded_seeded_sample_per_class(digits, monkeypatch):
    fit_module = importlib.import_module("glassjax.systems.glassbox.fit")  # the package exports fit, the function
    monkeypatch.setattr(fit_module, "SAMPLE_PER_CLASS", 5)
    batches = _ragged(digits.x_train, digits.y_train, [64] * (digits.x_train.shape[0] // 64) + [digits.x_train.shape[0] % 64])
    survey = fit_module._survey(batches, 64, jax.random.PRNGKey(0), "test")
    again = fit_module._survey(batches, 64, jax.random.PRNGKey(0), "test")
    other = fit_module._survey(batches, 64, jax.random.PRNGKey(1), "test")
    assert survey.count == digits.x_train.shape[0]
    np.testing.assert_array_equal(np.bincount(survey.sample_y), [5, 5, 5, 5])
    np.testing.assert_array_equal(survey.sample_x, again.sample_x)
    assert not np.array_equal(survey.sample_x, other.sample_x)  # the key chooses the sample
    # each row weighs its class's count over its class's sample size
    np.testing.assert_allclose(survey.sample_w, np.bincount(digits.y_train)[survey.sample_y] / 5)
    means = np.stack([digits.x_train[digits.y_train == c].mean(0) for c in range(4)])
    np.testing.assert_allclose(survey.class_means, means, atol=0.5 / 255 + 1e-6)


def test_survey_sample_does_not_depend_on_batches_or_the_split_over_processes(digits, monkeypatch):
    fit_module = importlib.import_module("glassjax.systems.glassbox.fit")
    monkeypatch.setattr(fit_module, "SAMPLE_PER_CLASS", 7)
    x, y = digits.x_train, digits.y_train
    n, key = x.shape[0], jax.random.PRNGKey(3)
    whole = fit_module._survey(_ragged(x, y, [n]), n, key, "test")
    rebatched = fit_module._survey(_ragged(x, y, [50, 3, n - 53]), 32, key, "test")
    np.testing.assert_array_equal(rebatched.sample_x, whole.sample_x)
    np.testing.assert_array_equal(rebatched.sample_y, whole.sample_y)
    # Two processes' contiguous blocks, each surveyed alone, then merged as _merge_surveys does: one process's sample.
    parts = [fit_module._survey(_ragged(x[rows], y[rows], [rows.stop - rows.start]), 40, key, "test")
             for rows in (slice(0, n // 3), slice(n // 3, n))]
    gathered_x = np.concatenate([p.sample_x for p in parts])
    gathered_y = np.concatenate([p.sample_y for p in parts])
    merged_x, merged_y = fit_module._lowest(gathered_x, gathered_y, key, 7)
    np.testing.assert_array_equal(merged_x, whole.sample_x)
    np.testing.assert_array_equal(merged_y, whole.sample_y)
    # Rows keep their stream order (the patch filters draw from the sample by position).
    pixels = (np.round(x * 255).astype(np.uint8).astype(np.float32) / 255).reshape(n, -1)  # what the uint8 batches hold
    positions = [int(np.flatnonzero((pixels == row.reshape(1, -1)).all(1) & (y == label))[0])
                 for row, label in zip(whole.sample_x, whole.sample_y)]
    assert positions == sorted(positions)


def test_in_place_class_sample_equals_the_lowest_of_the_whole_stream():
    """_ClassSample, fed batches of any size, keeps the k rows of lowest (priority, position) of the
    whole stream (numpy's lexsort of all of it), duplicated rows (equal priorities) included."""
    fit_module = importlib.import_module("glassjax.systems.glassbox.fit")
    rng = np.random.default_rng(5)
    x = rng.random((400, 3, 3, 1)).astype(np.float32)
    x[200:260] = x[:60]  # duplicates: their priorities tie
    y = np.zeros(400, np.int32)
    key = jax.random.PRNGKey(2)
    prio = fit_module._priorities(x, y, key)
    expected = x[np.sort(np.lexsort((np.arange(400), prio))[:37])]
    for sizes in ([400], [1] * 400, [36, 1, 100, 263]):
        sample, start = fit_module._ClassSample(37), 0
        for n in sizes:
            rows = slice(start, start + n)
            sample.offer(x[rows], prio[rows], np.arange(start, start + n))
            start += n
        np.testing.assert_array_equal(sample.rows[np.argsort(sample.order)], expected)


def test_priority_sample_is_uniform():
    """Bottom-k by the keyed hash includes every row equally often over keys: over 400 keys, 300
    rows, 30 kept, each row's count is Binomial(400, 0.1) (sd 6); a biased hash (e.g. toward dark
    or low-index rows) would spread the counts far wider or shift them with the rows' brightness."""
    fit_module = importlib.import_module("glassjax.systems.glassbox.fit")
    rng = np.random.default_rng(0)
    x = (rng.random((300, 4, 4, 1)) * np.linspace(0, 1, 300)[:, None, None, None]).astype(np.float32)
    y = np.zeros(300, np.int32)
    counts = np.zeros(300)
    for k in range(400):
        prio = fit_module._priorities(x, y, jax.random.PRNGKey(k))
        counts[np.argsort(prio)[:30]] += 1
    assert counts.sum() == 400 * 30
    assert counts.std() < 9, counts.std()
    # no trend with brightness: the darkest and brightest thirds are included alike (sd of each mean ~0.6)
    assert abs(counts[:100].mean() - counts[200:].mean()) < 3


def test_bad_sources_raise(digits):
    x, y = digits.x_train[:40], digits.y_train[:40]
    with pytest.raises(TypeError, match="one-shot"):
        GlassBox(**SMALL).fit(iter([(x, y)]))
    with pytest.raises(TypeError, match="expected y=None"):
        GlassBox(**SMALL).fit([(x, y)], y)
    with pytest.raises(ValueError, match="empty source"):
        GlassBox(**SMALL).fit([])
    with pytest.raises(ValueError, match="expected every batch of images"):
        GlassBox(**SMALL).fit([(x, y), (x[:, :4, :4], y)])
    with pytest.raises(ValueError, match="missing"):
        GlassBox(**SMALL).fit([(x[y != 1], y[y != 1])])


def test_rebatch_cuts_fixed_size_batches():
    pairs = [(np.zeros((n, 3, 3), np.uint8), np.zeros(n, np.int32)) for n in (5, 1, 9)]
    sizes = [b[0].shape[0] for b in streaming.rebatch(pairs, 4, "test")]
    assert sizes == [4, 4, 4, 3]


def test_synthetic_source_is_the_same_on_every_pass():
    source = streaming.SyntheticSource(50, (12, 12, 1), num_classes=3, batch_size=16, seed=2)
    first, second = list(source), list(source)
    assert [b[0].shape for b in first] == [(16, 12, 12, 1)] * 3 + [(2, 12, 12, 1)]
    for (xa, ya), (xb, yb) in zip(first, second):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_tfds_source_reads_in_batches_and_fits(tfds_digits, capsys):
    data_dir, reference = tfds_digits
    source = streaming.TFDSSource("tiny_digits", data_dir=data_dir, batch_size=50)
    assert len(source) == 120 and [b[0].shape[0] for b in source] == [50, 50, 20]
    d = data.load("digits", classes=["0", "1"])
    images = np.concatenate([b[0] for b in source]).astype(np.float32) / 255
    np.testing.assert_allclose(images, reference.x_train, atol=0.5 / 255 + 1e-7)
    model = GlassBox(**SMALL).fit(source)
    assert model.score(d.x_test, d.y_test) > 0.95
    with pytest.raises(ValueError, match="cannot read 'nope'"):
        streaming.TFDSSource("nope", data_dir=data_dir)
    # the command streams the train split and scores the test split
    status = cli.main(["fit", "--dataset", "tiny_digits", "--data-dir", data_dir, "--components", "10", "--json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0 and report["streamed"] and report["n_train"] == 120 and report["n_test"] == 20
    assert report["accuracy"] > 0.9


def test_moment_sample_is_seeded_bounded_and_weighted_to_the_class_totals():
    fit_module = importlib.import_module("glassjax.systems.glassbox.fit")
    y = np.repeat(np.arange(3), [50, 7, 20])
    w = np.random.default_rng(0).uniform(0.5, 2.0, y.size).astype(np.float32)
    indices, weights = fit_module._class_sample(y, w, 10, jax.random.PRNGKey(4))
    again, _ = fit_module._class_sample(y, w, 10, jax.random.PRNGKey(4))
    np.testing.assert_array_equal(indices, again)
    assert (np.diff(indices) > 0).all()
    np.testing.assert_array_equal(np.bincount(y[indices]), [10, 7, 10])
    # the sample's weighted class sums equal the whole set's (a ratio estimate of every moment)
    np.testing.assert_allclose(np.bincount(y[indices], weights=weights), np.bincount(y, weights=w), rtol=1e-6)
    np.testing.assert_array_equal(indices[y[indices] == 1], np.flatnonzero(y == 1))  # a small class whole
    assert fit_module._class_sample(y, None, 50, jax.random.PRNGKey(4)) is None  # no class larger: every row


def test_orbit_and_pca_passes_read_only_the_sample(digits, monkeypatch):
    # With at most 40 images per class, a source is read twice in full (survey, classifier), the
    # sample fits the orbit projection and the PCA, and the model stays close to the full fit.
    fit_module = importlib.import_module("glassjax.systems.glassbox.fit")
    x, y = digits.x_train, digits.y_train
    passes = []
    full = GlassBox(**SMALL).fit(x, y).score(digits.x_test, digits.y_test)
    monkeypatch.setattr(fit_module, "SAMPLE_PER_CLASS", 40)
    streamed = GlassBox(**SMALL).fit(_counted_source(x, y, passes))
    assert len(passes) == 2 and len(set(passes)) == 1
    sampled = GlassBox(**SMALL).fit(x, y)
    for model in (streamed, sampled):
        assert model.score(digits.x_test, digits.y_test) >= full - 0.03
