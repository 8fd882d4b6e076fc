import json
import subprocess
import sys

import pytest

from glassjax import cli

FIT_KEYS = {"system", "dataset", "classes", "n_train", "n_test", "settings", "parameters", "representation_layer",
            "feature_dim", "accuracy", "accuracy_transformed", "turned_changed", "test_group", "confusion",
            "intra_class_distance", "inter_class_distance", "fisher_ratio", "fit_seconds"}


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_datasets_lists_bundled_sets(capsys):
    assert cli.main(["datasets", "--json"]) == 0
    names = last_json(capsys.readouterr().out)["datasets"]
    assert {"lfw_faces", "digits", "mnist5k"} <= set(names)


def test_fit_then_evaluate_round_trip(tmp_path, capsys):
    model = tmp_path / "model.npz"
    args = ["--dataset", "digits", "--classes", "0,1", "--components", "10", "--classifier", "ridge"]
    assert cli.main(["fit", *args, "--out", str(model), "--json"]) == 0
    report = last_json(capsys.readouterr().out)
    assert FIT_KEYS | {"out"} == set(report)
    assert {"group", "representation", "classifier", "components"} <= set(report["settings"])
    assert report["settings"]["components"] == 10 and report["settings"]["classifier"] == "ridge"
    assert report["n_train"] + report["n_test"] == 360 and report["accuracy"] > 0.95
    assert report["accuracy"] == report["accuracy_transformed"]  # invariant representation under d4
    assert cli.main(["evaluate", "--model", str(model), "--dataset", "digits", "--classes", "0,1", "--json"]) == 0
    again = last_json(capsys.readouterr().out)
    assert again["accuracy"] == report["accuracy"]
    assert set(again) == FIT_KEYS - {"fit_seconds"} | {"model"}


def test_every_system_fits_with_the_same_keys(tmp_path, capsys):
    model = tmp_path / "alexnet.npz"
    argv = ["fit", "--system", "alexnet", "--dataset", "digits", "--classes", "0,1", "--epochs", "1",
            "--width", "0.0625", "--out", str(model), "--json"]
    assert cli.main(argv) == 0
    report = last_json(capsys.readouterr().out)
    assert FIT_KEYS | {"out"} == set(report)
    assert report["system"] == "alexnet" and report["representation_layer"] == "fc7"
    assert report["settings"]["epochs"] == 1 and report["settings"]["source"] == "trained"
    assert cli.main(["evaluate", "--model", str(model), "--dataset", "digits", "--classes", "0,1", "--json"]) == 0
    again = last_json(capsys.readouterr().out)
    assert again["accuracy"] == report["accuracy"] and again["parameters"] == report["parameters"]
    # A model of other classes or images is refused before scoring.
    assert cli.main(["evaluate", "--model", str(model), "--dataset", "digits", "--json"]) == 2
    assert "has 2 classes" in capsys.readouterr().err


@pytest.mark.parametrize("argv,match", [
    (["fit", "--dataset", "nope"], "unknown data set 'nope'"),
    (["fit", "--dataset", "digits", "--classes", "0,x"], "unknown class 'x'"),
    (["fit", "--dataset", "digits", "--classes", "3"], "at least two distinct classes"),
    (["fit", "--group", "d5"], "unknown group 'd5'"),
    (["fit", "--poolings", "median"], "expected poolings"),
    (["fit", "--system", "lenet9"], "unknown system 'lenet9'"),
    (["fit", "--width", "0.5"], "--width: applies to none of the chosen systems (glassbox)"),
    (["evaluate", "--model", "/nonexistent/model.npz"], "no model file"),
])
def test_bad_input_is_one_line_and_exit_2(argv, match, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0] and "Traceback" not in err[0]


def test_bad_option_values_are_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fit", "--whiten", "maybe"])
    assert exit_info.value.code == 2
    assert "argument --whiten: expected true or false, got 'maybe'" in capsys.readouterr().err


def test_console_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "glassjax.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for command in cli.COMMANDS:
        assert command.replace("_", "-") in out


def test_cli_docs_match_help(monkeypatch):
    """docs/cli.md holds every command's --help text as printed at 100 columns."""
    from pathlib import Path

    monkeypatch.setenv("COLUMNS", "100")
    docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    helps = [parser.format_help()] + [sub.format_help() for sub in subparsers.choices.values()]
    for text in helps:
        assert text.strip() in docs, f"docs/cli.md is out of date for:\n{text.splitlines()[0]}"
