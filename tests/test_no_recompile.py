"""Same-shape batches compile once: in every fit pass and in transform / predict."""
import contextlib

import jax
import pytest

from glassjax import data
from glassjax.systems.glassbox import GlassBox

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
SMALL = dict(filters_per_class=4, pool_dim=8, orbit_dim=8, components=20, batch_size=32)


@contextlib.contextmanager
def compile_counter():
    """A list whose length is the number of XLA compilations so far in the block."""
    seen = []

    def listener(event, duration, **kwargs):
        if event == COMPILE_EVENT:
            seen.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", classes=["0", "1", "6", "9"])


@pytest.mark.parametrize("classifier", ["ridge", "logistic"])
def test_fit_passes_compile_on_their_first_batch_only(digits, classifier):
    x, y = digits.x_train[:160], digits.y_train[:160]
    with compile_counter() as compiles:
        before_batch = []  # compilations so far, each time the source hands out a batch

        def source():
            for start in range(0, 160, 32):
                before_batch.append(len(compiles))
                yield x[start : start + 32], y[start : start + 32]

        GlassBox(classifier=classifier, **SMALL).fit(source)
    assert len(before_batch) == 4 * 5  # four passes of five batches
    for p in range(4):
        counts = before_batch[5 * p : 5 * p + 5]
        # between the 2nd and the 5th batch of a pass (batches 1..3 processed) nothing compiles
        assert counts[1:] == [counts[1]] * 4, f"pass {p} recompiled: {counts}"


def test_transform_and_predict_compile_once_for_any_number_of_batches(digits):
    model = GlassBox(**SMALL).fit(digits.x_train, digits.y_train)
    x = digits.x_test[:150]  # 5 batches of 32, the last one padded
    model.transform(x[:32])  # N >= batch_size: batches of 32 rows from now on
    model.predict(x[:32])
    with compile_counter() as compiles:
        model.transform(x)
        model.predict(x)
        model.transform(x[:50])
    assert compiles == []
