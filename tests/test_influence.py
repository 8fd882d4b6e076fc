"""Influence of training images: equal to finite differences of the refit in the weights, the
command's JSON, and the figure."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from glassjax import cli, data
from glassjax.analysis import influence as infl_lib
from glassjax.core import reduction
from glassjax.report.influence import influence_figure
from glassjax.systems.glassbox import apply


@pytest.fixture(scope="module")
def small():
    """Digits 0, 1 and 7: 90 train images (with 0.01 noise: a generic point, away from relu's kinks
    on blank background) and 10 test images, as a Dataset."""
    ds = data.load("digits", classes=["0", "1", "7"])
    rng = np.random.default_rng(0)
    x = (0.99 * ds.x_train[:90] + 0.01 * rng.random(ds.x_train[:90].shape)).astype(np.float32)
    return ds._replace(x_train=x, y_train=ds.y_train[:90], x_test=ds.x_test[:10], y_test=ds.y_test[:10])


@pytest.fixture(scope="module")
def scored(small):
    infl = infl_lib.Influence(small.x_train, small.y_train, class_names=small.class_names)  # GlassBox() defaults, seed 0
    return infl, infl.scores(small.x_test[0], int(small.y_test[0]))


def test_influence_equals_finite_differences_of_the_refit(small, scored):
    infl, (loss, scores) = scored
    assert scores.shape == (90,)
    with reduction.float64():
        xt, yt = jnp.asarray(small.x_test[:1], jnp.float64), jnp.asarray(small.y_test[:1], jnp.int32)

        def loss_at(w):  # the loss of a refit with weights w (the compiled influence's value)
            return float(infl_lib._value_and_grad(infl.plan, infl.x_train, jnp.asarray(w), xt, yt)[0])

        for j in (int(np.argmax(scores)), int(np.argmin(scores))):
            step = np.zeros(90)
            step[j] = 1e-6
            fd = (loss_at(1 + step) - loss_at(1 - step)) / 2e-6
            assert abs(scores[j] - fd) <= 1e-4 * abs(fd), (j, scores[j], fd)
        # The loss at weights 1 is that of the model the differentiable fit returns.
        params = infl.params
        assert float(infl_lib.cross_entropy(apply(params, xt), yt)[0]) == pytest.approx(loss, rel=1e-9)


def test_command_json(small, scored, monkeypatch, capsys):
    infl, (loss, scores) = scored
    monkeypatch.setattr(infl_lib.data, "load", lambda name, **kw: small)
    assert cli.main(["influence", "--dataset", "digits", "--test-index", "0", "--top", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"test_index", "loss", "harmful", "helpful", "seconds"} <= set(result)
    assert result["test_index"] == 0 and result["loss"] == pytest.approx(loss, rel=1e-9)
    assert result["harmful"] == [int(j) for j in np.argsort(-scores, kind="stable")[:3]]
    assert result["helpful"] == [int(j) for j in np.argsort(scores, kind="stable")[:3]]


def test_command_bad_input(capsys):
    assert cli.main(["influence", "--dataset", "digits", "--test-index", "-1"]) == 2
    assert "--test-index: expected an index >= 0" in capsys.readouterr().err
    assert cli.main(["influence", "--dataset", "digits", "--test-index", "0", "--top", "0"]) == 2
    assert "--top: expected K >= 1" in capsys.readouterr().err


def test_figure(small, scored):
    _, (loss, scores) = scored
    entry = {"test_index": 0, "label": int(small.y_test[0]), "loss": loss,
             "harmful": list(np.argsort(-scores)[:3]), "helpful": list(np.argsort(scores)[:3])}
    png = influence_figure([entry], small.x_train, small.y_train, small.x_test, small.class_names, top=3)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least one entry"):
        influence_figure([], small.x_train, small.y_train, small.x_test, small.class_names)
