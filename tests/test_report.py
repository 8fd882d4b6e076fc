"""The report: figures are PNGs, the page is self-contained, the folder is written all or nothing."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from glassjax import report

PNG = b"\x89PNG\r\n\x1a\n"
CHROMIUM = "/usr/bin/chromium"
NAMES = ("glassbox_response", "glassbox_orbit", "glassbox_invariant", "glassbox_pca",
         "glassbox_both_representation", "glassbox_both_pca", "alexnet_conv1", "alexnet_fc7", "alexnet_fc8")
SYSTEMS = {"glassbox": "glass-box", "glassbox_both": "glass-box + orbit", "alexnet": "AlexNet"}
REPRESENTATION = {"glassbox": "invariant", "glassbox_both": "representation", "alexnet": "fc7"}


def _owner(name):
    system = max((s for s in SYSTEMS if name.startswith(f"{s}_")), key=len)
    return system, name[len(system) + 1:]


def _row(name, invariance, equivariance, fisher, lie=1.0):
    system, layer = _owner(name)
    return {"name": name, "system": system, "layer": layer, "shape": [4, 4, 2] if layer == "conv1" else [16],
            "invariance_error": invariance,
            "equivariance_error": equivariance, "equivariance_error_identity": equivariance / 2, "lie_derivative": lie,
            "intra_class_distance": 1.0, "inter_class_distance": 2.0, "fisher_ratio": fisher,
            "linear_probe_accuracy": 0.9, "ridge": 1e-3, "fit_rows": 96}


def _scores(accuracy, moved, turned):
    return {"accuracy": accuracy, "accuracy_transformed": moved, "turned_changed": turned, "n_test": 10,
            "confusion": [[5, 0], [1, 4]], "confusion_transformed": [[4, 1], [2, 3]]}


@pytest.fixture
def result():
    """Numbers shaped like comparison.run's, chosen so the glass-box loses on some and wins on others."""
    values = {"glassbox_response": (0.7, 3e-3, 0.4), "glassbox_orbit": (1.3, 1e-4, 0.05),
              "glassbox_invariant": (1e-8, 1e-4, 0.1), "glassbox_pca": (1e-7, 1e-6, 0.06),
              "glassbox_both_representation": (1.2, 2e-4, 0.05), "glassbox_both_pca": (1.1, 0.6, 0.07),
              "alexnet_conv1": (0.8, 0.1, 0.2), "alexnet_fc7": (0.3, 0.08, 1.9), "alexnet_fc8": (0.4, 0.2, 4.4)}
    rows = [_row(name, *values[name], lie=3.4 if name == "glassbox_invariant" else 1.2) for name in NAMES]
    return {"dataset": "bars", "classes": ["top", "<centre>"], "group": "d4", "n_fit_images": 12, "n_eval_images": 10,
            "layers": rows, "accuracy": {"glassbox": _scores(0.9, 0.9, 0), "glassbox_both": _scores(0.9, 0.6, 3),
                                         "alexnet": _scores(1.0, 0.8, 4)},
            "seconds": {"total": 12.0}, "command": "glassjax compare --dataset bars",
            "systems": {name: {"title": title, "description": f"what {name} is", "representation": f"{name}_{REPRESENTATION[name]}",
                               "settings": {"epochs": 1}, "fit_seconds": 1.5} for name, title in SYSTEMS.items()}}


@pytest.fixture(scope="module")
def figures():
    """Every figure drawn from small synthetic inputs."""
    rng = np.random.default_rng(0)
    y = np.arange(10) % 2
    filters = [(rng.random((3, 3, 1)), "top"), (rng.random((3, 3, 1)), "<centre>")]
    rows = [_row(name, 0.5, 0.1, 1.0) for name in NAMES]
    accuracy = {"glassbox": _scores(0.9, 0.9, 0), "alexnet": _scores(1.0, 0.8, 4)}
    return {
        "filters.png": report.filters_figure([("patch filters", filters), ("class prototypes", filters)]),
        "orbit.png": report.orbit_figure(rng.random((8, 6, 6, 1)), [report.element_label("d4", g) for g in range(8)],
                                         {"glassbox": ["top"] * 8, "alexnet": ["top", "<centre>"] * 4}),
        "scatter.png": report.scatter_figure([("glass-box", rng.random((10, 5)), rng.random((10, 5))),
                                              ("AlexNet fc7", rng.random((10, 7)), rng.random((10, 7)))],
                                             y, ["top", "<centre>"]),
        "layers.png": report.layers_figure(rows),
        "accuracy.png": report.accuracy_figure(accuracy, "d4"),
        "confusion.png": report.confusion_figure(accuracy, ["top", "<centre>"], "d4"),
    }


def test_figures_are_png(figures):
    for name, data in figures.items():
        assert data.startswith(PNG), name
        assert len(data) > 2000, name


def test_element_labels():
    labels = [report.element_label("d4", g) for g in range(8)]
    assert labels[0] == "identity" and len(set(labels)) == 8
    assert "flip, turn 90°" in labels
    assert report.element_label("rot:8", 1) == "turn 45°"
    assert report.element_label("trans:2", 3) == "shift (1, 1)/2"


def test_findings_follow_the_numbers(result):
    found = report.findings(result)
    loses, wins = " ".join(found["loses"]), " ".join(found["wins"])
    notes = " ".join(found["notes"])
    assert "Lower clean test accuracy: glass-box 0.900, AlexNet 1.000" in loses
    assert "Higher test accuracy under random d4 elements: glass-box 0.900, AlexNet 0.800" in wins
    assert "makes a 6 a 9, changes 0 of 10 predictions" in loses and "4 of AlexNet's" in loses
    assert "3.40 per radian" in loses  # less smooth than fc7 between the group's elements
    assert "Weaker class separation" in loses and "fc8 4.4" in loses
    # Not the subject's failing, so among the notes on the other systems.
    assert "glass-box + orbit's layer pca is not equivariant (error 0.6)" in notes and "pca" not in loses
    assert "most equivariant non-invariant layer, orbit, 0.0001, 5.0e-05 above its fit's floor" in wins
    assert "most equivariant AlexNet layer, fc7, 0.08, 0.04 above its floor" in wins
    assert "underdetermined" not in wins
    sixes = dict(result, classes=["9", "6"])  # confusion [[5, 0], [1, 4]]: one 6 called 9
    six_nine = " ".join(report.findings(sixes)["loses"])
    assert "Here it calls 1 of the 10 test 6s and 9s by the other's name (glass-box + orbit 1, AlexNet 1)" in six_nine
    # Without a half turn in the group there is no 6-vs-9 blind spot to report.
    assert "6 a 9" not in " ".join(report.findings(dict(result, group="flip"))["loses"])
    better = dict(result, accuracy=dict(result["accuracy"], glassbox=_scores(1.0, 0.9, 0)))
    assert "Equal clean test accuracy" in " ".join(report.findings(better)["wins"])


def test_html_is_self_contained(result, figures):
    page = report.render_html(result, figures)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page
    embedded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(figures)
    assert "&lt;centre&gt;" in page and "<centre>" not in page
    assert "Where glass-box loses" in page and "glassbox_both_pca" in page
    assert "what alexnet is" in page  # every system described
    assert "by irreducible block" not in page  # no system with irrep blocks
    blocks = {"A1": {"dim": 1, "variance": 0.61, "components": 40, "kept_variance": 0.55},
              "E": {"dim": 2, "variance": 0.2, "components": 12, "kept_variance": 0.125}}
    systems = {**result["systems"], "glassbox_both": dict(result["systems"]["glassbox_both"], settings={"irrep_blocks": blocks})}
    page = report.render_html(dict(result, systems=systems), figures)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page.split("by irreducible block")[1], re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert [c[1:] for c in cells if c] == [["A1", "1", "0.6100", "40", "0.5500"], ["E", "2", "0.2000", "12", "0.1250"]]


def _listing(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_write_report_writes_and_replaces(result, figures, tmp_path):
    out = tmp_path / "report"
    report.write_report(out, result, figures)
    assert sorted(os.listdir(out)) == sorted(["index.html", "metrics.json", *figures])
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["format"] == report.FORMAT and stored["layers"] == result["layers"]
    assert (out / "layers.png").read_bytes() == figures["layers.png"]
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask  # an ordinary folder, not mkdtemp's 0700
    fewer = {k: v for k, v in figures.items() if k != "confusion.png"}
    report.write_report(out, dict(result, dataset="again"), fewer)
    assert "confusion.png" not in os.listdir(out)
    assert json.loads((out / "metrics.json").read_text())["dataset"] == "again"
    assert os.listdir(tmp_path) == ["report"]


def test_failure_keeps_the_old_report(result, figures, tmp_path, monkeypatch):
    out = tmp_path / "report"
    report.write_report(out, result, figures)
    before = _listing(out)

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(report.folder, "render_html", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        report.write_report(out, dict(result, dataset="lost"), figures)
    assert _listing(out) == before
    assert os.listdir(tmp_path) == ["report"]  # no half-built folder beside it
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        report.write_report(fresh, result, figures)
    assert not fresh.exists() and os.listdir(tmp_path) == ["report"]


def test_foreign_folders_are_refused(result, figures, tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    with pytest.raises(ValueError, match="expected a new or empty folder or an earlier glassjax report"):
        report.write_report(mine, result, figures)
    assert os.listdir(mine) == ["chapter1.tex"]
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="expected a folder for the report"):
        report.check_out(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    report.check_out(empty)
    report.write_report(empty, result, figures)
    assert (empty / "index.html").exists()


# Makes the page report whether every image decoded, in its title, once it has loaded.
_IMAGE_CHECK = """<script>window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.title = "images " + document.images.length + " broken " + broken;
});</script>"""


def _chromium(page: Path, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (Debian package chromium)")
def test_opens_in_headless_chromium(result, figures, tmp_path):
    out = report.write_report(tmp_path / "report", result, figures)
    run = _chromium(out / "index.html", tmp_path / "profile-a")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Where glass-box loses" in run.stdout
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    # A copy with a probe script: the page itself has none, and must need none.
    probe = tmp_path / "probe.html"
    shutil.copy(out / "index.html", probe)
    probe.write_text(probe.read_text().replace("</body>", _IMAGE_CHECK + "</body>"))
    run = _chromium(probe, tmp_path / "profile-b")
    assert f"<title>images {len(figures)} broken 0</title>" in run.stdout, run.stdout[:500]


def test_class_specificity_section(result, figures):
    """The section appears only when measured, one row per system, its numbers and figures embedded."""
    def system(mis, density, history=None):
        return {"layer": "conv3", "filters": 4, "accuracy": 0.9, "accuracy_transformed": 0.5, "mis": mis,
                "gate_density": density, "mi_matrix": [[0.1, 0.2, 0.0, 0.3], [0.2, 0.0, 0.1, 0.05]],
                "filter_classes": None if density is None else [[1, 0], [0, 1], [1, 0.5], [0, 1]],
                "localization": {"gradient_ap": 0.75, "cam_ap": None},
                "detection": {"pgd": {"success_rate": 0.4, "auc_gate": 0.61, "auc_preferred": 0.7, "auc_logistic": 0.95}},
                "history": history}
    history = [{"epoch": e, "path": "csg" if e == 2 else "standard", "accuracy_gate_off": 0.8, "accuracy_gate_true": 0.9}
               for e in (1, 2, 3)]
    section = {"dataset": "bars", "classes": ["top", "<centre>"],
               "systems": {"glassbox": system(0.1234, 0.5), "alexnet": system(0.25, None, history)}}
    drawn = report.class_specificity_figures(section)
    assert sorted(drawn) == ["class_specificity_leakage.png", "class_specificity_matrix.png", "class_specificity_summary.png"]
    assert "Class specificity" not in report.render_html(result, figures)
    page = report.render_html(dict(result, class_specificity=section), {**figures, **drawn})
    table = page.split("<h2>Class specificity</h2>")[1].split("</table>")[0]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    cells = [c for c in cells if c]
    assert cells[0][:5] == ["glass-box", "conv3", "0.9", "0.123", "0.5"] and cells[0][6] == "-"
    assert cells[1][4] == "-" and cells[1][-2:] == ["0.61", "0.95"]
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == len(figures) + 3


def test_influence_section(result, figures):
    """The section appears only when measured: one row per test image, class names escaped, the figure embedded."""
    entries = [{"test_index": 7, "label": 1, "loss": 2.5, "helpful": [3, 1], "harmful": [0, 2]},
               {"test_index": 2, "label": 0, "loss": 0.75, "helpful": [1, 3], "harmful": [2, 0]}]
    rng = np.random.default_rng(1)
    x_train, x_test = rng.random((4, 6, 6, 1)), rng.random((8, 6, 6, 1))
    drawn = report.influence_figure(entries, x_train, np.array([0, 1, 0, 1]), x_test, ["top", "<centre>"], top=2)
    assert drawn.startswith(PNG)
    assert "Influence of the training images" not in report.render_html(result, figures)
    page = report.render_html(dict(result, influence=entries), {**figures, "influence.png": drawn})
    table = page.split("<h2>Influence of the training images</h2>")[1].split("</table>")[0]
    cells = [c for c in (re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)) if c]
    assert cells == [["7", "&lt;centre&gt;", "2.500", "3, 1", "0, 2"], ["2", "top", "0.750", "1, 3", "2, 0"]]
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == len(figures) + 1
    with pytest.raises(ValueError, match="at least one entry"):
        report.influence_figure([], x_train, np.array([0, 1, 0, 1]), x_test, ["top", "<centre>"])
