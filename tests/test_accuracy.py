"""Accuracy on the seeded splits, guarded so it cannot silently regress.

Thresholds sit a little under the numbers measured when they were set (docs/results.md); the
issue's goals are noted beside them. "transformed" is the test set acted on by seeded random
D4 elements.

The models fit on one device: these tests guard accuracy, and the 8 emulated devices of the
test configuration would only oversubscribe the cores (tests/test_parallel.py checks that 8
devices give the same numbers as 1).
"""
import jax
import pytest

from glassjax import data
from glassjax.analysis.scoring import transformed_test_set
from glassjax.systems.glassbox import GlassBox


def accuracies(name, **config):
    d = data.load(name)
    model = GlassBox(devices=jax.devices()[:1], **config).fit(d.x_train, d.y_train)
    moved = transformed_test_set(d.x_test, "d4", seed=0)
    return model.score(d.x_test, d.y_test), model.score(moved, d.y_test)


def test_lfw_faces_invariant_is_perfect():
    clean, moved = accuracies("lfw_faces", representation="invariant")  # goal 1.00 / 1.00
    assert clean == 1.0 and moved == 1.0


def test_digits_invariant():
    clean, moved = accuracies("digits", representation="invariant")  # goal >= 0.94 both; measured 0.9685
    assert clean >= 0.96 and moved == clean


@pytest.mark.slow
def test_digits_both():
    clean, _ = accuracies("digits", representation="both")  # goal >= 0.99; measured 0.9926
    assert clean >= 0.985


@pytest.mark.slow
def test_mnist5k_invariant():
    clean, moved = accuracies("mnist5k", representation="invariant")  # goal >= 0.92 both; measured 0.939
    assert clean >= 0.93 and moved == clean


@pytest.mark.slow
def test_mnist5k_both():
    # goal >= 0.985; measured 0.984 (300 components of the symmetry-adapted layer 2; 0.982 with the
    # plain PCA of 200 before it, 0.978 with 200 symmetry-adapted ones)
    clean, moved = accuracies("mnist5k", representation="both")
    assert clean >= 0.98 and moved < clean  # orientation kept: not invariant
