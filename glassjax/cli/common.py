"""Arguments and output shared by the sub-commands (no command imports another)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time

import numpy as np


def add_dataset_arguments(parser: argparse.ArgumentParser, *, default: str | None = "lfw_faces") -> None:
    """--dataset, --classes, --data-dir, --seed, --image-size."""
    parser.add_argument("--dataset", default=default, required=default is None,
                        help="bundled name (lfw_faces, digits, mnist5k), a prepared TFDS name, or a path: a folder of "
                             "class folders of images, an .npz, a Hugging Face save_to_disk folder or parquet "
                             "(docs/data.md) (default: %(default)s)")
    parser.add_argument("--classes", default=None, help="comma-separated class names or indices to keep, e.g. 6,9")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: $TFDS_DATA_DIR)")
    parser.add_argument("--seed", type=seed_option, default=0, help="seed of the split and of every random choice (default: 0)")
    parser.add_argument("--image-size", type=image_size_option, default=None, metavar="H[,W]",
                        help="resize every image to H x W (bilinear); without it, images of different sizes are an error")


def image_size_option(text: str) -> tuple[int, int]:
    """argparse type of --image-size: H or H,W (``data.images.image_size``)."""
    from glassjax.data import images

    try:
        return images.image_size(text, "--image-size")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).split(": ", 1)[1]) from None


def seed_option(text: str) -> int:
    """argparse type of --seed: the one seed rule of the API (``core.arrays.as_seed``)."""
    from glassjax.core import arrays

    try:
        return arrays.as_seed(int(text.strip()), "--seed")
    except (TypeError, ValueError) as err:
        if isinstance(err, ValueError) and "expected" not in str(err):  # int() of a non-number
            err = TypeError(f"--seed: expected seed an int in 0..{arrays.MAX_SEED}, got {text!r}")
        raise argparse.ArgumentTypeError(str(err).split(": ", 1)[1]) from None


# --- several processes (jax.distributed) -----------------------------------------------------

# Seconds without a heartbeat before a process is declared dead (``core.distributed``).
HEARTBEAT_TIMEOUT = 60


def add_process_arguments(parser: argparse.ArgumentParser) -> None:
    """--coordinator, --num-processes, --process-id, --distributed, --heartbeat-timeout."""
    group = parser.add_argument_group(
        "several processes (one model; each process reads its own share of the train split, process 0 writes "
        "and reports)")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="address of process 0, the same in every process, e.g. 10.0.0.1:1234")
    group.add_argument("--num-processes", type=int, default=None, metavar="N", help="how many processes take part")
    group.add_argument("--process-id", type=int, default=None, metavar="I", help="this process, 0..N-1")
    group.add_argument("--distributed", action="store_true",
                       help="let jax.distributed.initialize() find the processes itself (TPU pods, SLURM, Open MPI)")
    group.add_argument("--heartbeat-timeout", type=int, default=HEARTBEAT_TIMEOUT, metavar="SECONDS",
                       help="a process silent this long is declared dead and the others stop (default: %(default)s)")


def start_processes(args: argparse.Namespace) -> bool:
    """Join the run of several processes the arguments name (``core.distributed.initialize``), before
    any JAX computation; returns whether this process is the main one (process 0, or the only one).
    Processes other than 0 keep quiet (no progress bars)."""
    import os

    given = {"--coordinator": args.coordinator, "--num-processes": args.num_processes, "--process-id": args.process_id}
    if args.distributed:
        named = [k for k, v in given.items() if v is not None]
        if named:
            raise ValueError(f"--distributed: expected alone (JAX finds the processes), got {', '.join(named)} too")
    elif all(v is None for v in given.values()):
        return True
    elif any(v is None for v in given.values()):
        missing = [k for k, v in given.items() if v is None]
        raise ValueError(f"{', '.join(given)}: expected all three together, got no {', '.join(missing)}")
    from glassjax.core import distributed

    try:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id, auto=args.distributed,
                               heartbeat_timeout=args.heartbeat_timeout)
    except ValueError as err:  # the option, not the function, in the one-line error
        option = "--distributed" if args.distributed else "--coordinator"
        raise ValueError(f"{option}: {str(err).split(': ', 1)[1]}") from None
    if not distributed.is_main():
        os.environ["GLASSJAX_QUIET"] = "1"
    return distributed.is_main()


def check_processes(args: argparse.Namespace, chosen) -> None:
    """ValueError when the arguments ask for several processes and a chosen system cannot fit across them."""
    if not (args.distributed or args.coordinator or args.num_processes or args.process_id is not None):
        return
    alone = [s.name for s in chosen if not s.processes]
    if alone:
        from glassjax import systems

        able = [n for n in systems.names() if systems.get(n).processes]
        raise ValueError(f"--num-processes: {', '.join(alone)} cannot fit across processes; those that can: {', '.join(able)}")


def lost_process(err: BaseException) -> str | None:
    """The one-line message for ``err`` when it is another process failing in a run of several (a
    collective that lost its peer, the coordinator gone); None otherwise."""
    import jax

    if not jax.distributed.is_initialized() or not isinstance(err, jax.errors.JaxRuntimeError):
        return None
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"another process failed or left the run ({first[:200]})"


def end_processes(code: int) -> int:
    """``code``; in a run of several processes that failed, this process ends here at once
    (``core.distributed.exit_now``) rather than waiting at JAX's exit barrier for the others."""
    jax = sys.modules.get("jax")
    if code and jax is not None and jax.distributed.is_initialized():
        from glassjax.core import distributed

        distributed.exit_now(code)
    return code


def crash_processes() -> None:
    """In a run of several processes, an uncaught exception (a bug): its traceback, then exit 1 at once."""
    jax = sys.modules.get("jax")
    if jax is not None and jax.distributed.is_initialized():
        import traceback

        from glassjax.core import distributed

        traceback.print_exc()
        distributed.exit_now(1)


def shard_train(dataset):
    """This process's share of ``dataset``'s train split (``data.sharding``); the whole with one process."""
    import jax

    from glassjax.data import sharding

    return sharding.shard_train(dataset, jax.process_index(), jax.process_count())


# --- path arguments, checked before any work --------------------------------------------------

# The files each command writes (argument dests), checked before its work starts: an error
# after minutes of fitting, or one naming a temporary path, helps nobody.
OUTPUT_FILES = {"fit": ("out",), "train_alexnet": ("out", "checkpoint"), "train_csg": ("out", "checkpoint"),
                "bench": ("out",)}


def check_output_file(path: str | None, option: str) -> None:
    """ValueError unless a file can be written at ``path``: a regular file or a new name (a symlink's
    target for a symlink) in a folder that exists or can be made, and that we may write in."""
    if path is None:
        return
    import os

    from glassjax.core import files

    target = files.writable_target(path, option, "a file path")
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{option}: expected a file path inside a folder, got {path} ({folder} is a file)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{option}: expected a folder we may write in, got {path} ({folder}: permission denied)")


def check_path_arguments(args: argparse.Namespace) -> None:
    """Every path argument of ``args`` checked before the command's work: --data-dir an existing
    folder, the command's output files writable (OUTPUT_FILES)."""
    import os

    data_dir = getattr(args, "data_dir", None)
    if data_dir is not None and not os.path.isdir(data_dir):
        kind = "a file" if os.path.exists(data_dir) else "no such folder"
        raise ValueError(f"--data-dir: expected an existing folder, got {data_dir} ({kind})")
    for dest in OUTPUT_FILES.get(args.command.replace("-", "_"), ()):
        check_output_file(getattr(args, dest, None), "--" + dest.replace("_", "-"))


def load_dataset(args: argparse.Namespace):
    """The data set the arguments name, as a ``glassjax.data.Dataset``."""
    from glassjax import data

    classes = [c for c in args.classes.split(",") if c.strip()] if args.classes else None
    return data.load(args.dataset, classes=classes, data_dir=args.data_dir, seed=args.seed,
                     image_size=getattr(args, "image_size", None))


def _to_builtin(value):
    if isinstance(value, dict):
        return {str(k): _to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_builtin(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def print_json(obj: dict) -> None:
    """Print ``obj`` as one JSON line on stdout (numpy and JAX values become plain numbers)."""
    print(json.dumps(_to_builtin(obj), allow_nan=True))
    sys.stdout.flush()


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print ``rows`` as an aligned text table of ``columns`` (floats with 4 significant digits)."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return f"{v:.4g}"
        return str(v)

    cells = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


# --- systems and their configs --------------------------------------------------------------


def add_systems_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """--systems: a comma-separated list of registered system names."""
    parser.add_argument("--systems", default=default,
                        help="comma-separated registered systems, the first the report's subject; "
                             "`glassjax systems` lists them (default: %(default)s)")


def selected_systems(args: argparse.Namespace) -> list[str]:
    """The --systems names, each checked against the registry."""
    from glassjax import systems

    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"--systems: expected distinct registered names, got {args.systems!r}")
    for name in names:
        systems.get(name)  # ValueError naming the registered ones
    return names


def _field_docs(config_type) -> dict[str, str]:
    """field -> its entry in the config class docstring ("    name   what it is", continued on deeper lines)."""
    docs, field, indent = {}, None, None
    for line in (config_type.__doc__ or "").splitlines():
        match = re.match(r"(\s+)(\w+)\s{2,}(.+)", line)
        if match and (indent is None or len(match.group(1)) == indent):
            field, indent = match.group(2), len(match.group(1))
            docs[field] = match.group(3).strip()
        elif field is not None and line.strip() and len(line) - len(line.lstrip()) > indent:
            docs[field] += " " + line.strip()
        else:
            field = None
    return docs


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _option_type(annotation: str):
    if "tuple" in annotation:
        return lambda text: tuple(p.strip() for p in text.split(",") if p.strip())
    if "bool" in annotation:
        return _parse_bool
    if "int" in annotation:
        return int
    if "float" in annotation:
        return float
    return str


def config_fields() -> dict[str, dict]:
    """Every config field of every registered system: name -> {type, help, systems}."""
    from glassjax import systems

    fields: dict[str, dict] = {}
    for name in systems.names():
        config = systems.get(name).config
        docs = _field_docs(type(config))
        for field in dataclasses.fields(config):
            entry = fields.setdefault(field.name, {"type": str(field.type), "help": docs.get(field.name, ""),
                                                   "systems": [], "defaults": []})
            entry["systems"].append(name)
            value = getattr(config, field.name)
            shown = "from the data" if value is None and field.name != "weights" else (
                ",".join(map(str, value)) if isinstance(value, tuple) else value)
            entry["defaults"].append(f"{name}: {shown}")
    return fields


def add_config_arguments(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """One --option per config field of the registered systems; each applies to every chosen system
    whose config has that field, and left out keeps the system's default."""
    group = parser.add_argument_group("system settings (each applies to the chosen systems that have it)")
    for name, entry in sorted(config_fields().items()):
        if name in skip:
            continue
        defaults = "; ".join(sorted(set(entry["defaults"])))
        list_note = " (comma-separated)" if "tuple" in entry["type"] else ""
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_option_type(entry["type"]), default=None,
                           help=f"{entry['help']}{list_note} [default {defaults}]".replace("%", "%%"))


def config_overrides(args: argparse.Namespace, names: list[str], **fixed) -> dict[str, dict]:
    """system -> {field: value} from the config options given on the command line (and ``fixed``
    values, e.g. the comparison's group, for the systems that have the field). An option that
    applies to none of ``names`` is an error."""
    from glassjax import systems

    given = {name: getattr(args, name) for name in config_fields()
             if name not in fixed and getattr(args, name, None) is not None}
    out = {}
    used = set()
    for system_name in names:
        fields = {f.name for f in dataclasses.fields(systems.get(system_name).config)}
        out[system_name] = {k: v for k, v in {**fixed, **given}.items() if k in fields}
        used |= fields
    unused = [k for k in given if k not in used]
    if unused:
        option = "--" + unused[0].replace("_", "-")
        raise ValueError(f"{option}: applies to none of the chosen systems ({', '.join(names)})")
    return out


def parameter_count(params) -> int:
    """Numbers in a params pytree (every array leaf's size)."""
    import jax

    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params) if hasattr(leaf, "shape")))


# --- fit / evaluate reports -------------------------------------------------------------------


def describe(fitted, dataset, seed: int) -> dict:
    """The report of ``fit`` and ``evaluate``, the same keys for every system: the system, its
    settings and size, and its test-set scores (clean and under random group elements) with the
    class geometry of the layer its classifier reads."""
    from glassjax.analysis import comparison, scoring

    system, params = fitted.system, fitted.params
    layer = system.representation(params)
    features = comparison.layer_function(fitted, layer)
    report = {
        "system": system.name,
        "dataset": dataset.name,
        "classes": list(dataset.class_names),
        "n_train": int(np.shape(dataset.x_train)[0]) if hasattr(dataset.x_train, "shape") else None,
        "n_test": int(dataset.x_test.shape[0]),
        "settings": dict(system.settings(params)),
        "parameters": parameter_count(params),
        "representation_layer": layer,
        "feature_dim": int(np.prod(comparison.layer_shapes(fitted, dataset.x_test.shape[1:])[layer].shape[1:])),
    }
    scores = scoring.classification_report(comparison.predictor(fitted), features, dataset.x_test, dataset.y_test,
                                           seed=seed, num_classes=dataset.num_classes)
    report.update({k: v for k, v in scores.items() if not k.startswith("confusion")})
    report["confusion"] = scores["confusion"]
    return report


def print_report(report: dict) -> None:
    n_train = report["n_train"] if report["n_train"] is not None else "?"
    print(f"{report['dataset']}: {n_train} train / {report['n_test']} test, classes {', '.join(report['classes'])}")
    print(f"system {report['system']}: {report['parameters']} parameters; its classifier reads "
          f"{report['representation_layer']} ({report['feature_dim']} features)")
    print(f"accuracy {report['accuracy']:.4f} clean, {report['accuracy_transformed']:.4f} under random {report['test_group']}")
    print(f"class geometry (test, {report['representation_layer']}): intra {report['intra_class_distance']:.4g}, "
          f"inter {report['inter_class_distance']:.4g}, Fisher ratio {report['fisher_ratio']:.4g}")


# --- the comparison commands ----------------------------------------------------------------

LAYER_COLUMNS = ["name", "invariance_error", "equivariance_error", "lie_derivative", "fisher_ratio",
                 "intra_class_distance", "inter_class_distance", "linear_probe_accuracy"]


def add_comparison_arguments(parser: argparse.ArgumentParser, *, systems: str) -> None:
    """Options shared by ``equivariance`` and ``compare``: data, systems, group, metric images, config."""
    add_dataset_arguments(parser)
    add_systems_argument(parser, systems)
    parser.add_argument("--group", default="d4",
                        help="d4 | c4 | flip | none | rot:N | trans:N: the group the layers are measured under, and "
                             "the group of every system that has one (default: %(default)s)")
    parser.add_argument("--images", type=int, default=200,
                        help="at most this many train images (with their orbits) fit the equivariance maps and "
                             "this many test images measure (default: %(default)s)")
    parser.add_argument("--ridge", type=float, default=1e-3,
                        help="ridge of the equivariance maps and linear probes, relative to the mean eigenvalue; "
                             "scaled up for layers wider than their fit rows (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    add_config_arguments(parser, skip=("group",))


def check_comparison_arguments(args: argparse.Namespace) -> None:
    if args.images < 2:
        raise ValueError(f"--images: expected at least 2, got {args.images}")
    if not args.ridge > 0:
        raise ValueError(f"--ridge: expected > 0, got {args.ridge}")
    weights = getattr(args, "weights", None)
    if weights is not None:
        import os

        if not os.path.isfile(weights):
            raise FileNotFoundError(f"--weights: no file at {weights}")


class Stages:
    """A progress bar over a command's named stages, with the seconds each took."""

    def __init__(self, desc: str, names: list[str]):
        from glassjax.core.progress import progress

        self.bar = progress(None, total=len(names), desc=desc, unit="stage")
        self.seconds: dict[str, float] = {}
        self.start = time.perf_counter()

    def run(self, name: str, fn, *args, **kwargs):
        self.bar.set_postfix_str(name)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        self.bar.update(1)
        return out

    def close(self) -> dict[str, float]:
        self.bar.close()
        return dict(self.seconds, total=time.perf_counter() - self.start)


def fit_systems(stages: Stages, names: list[str], dataset, args: argparse.Namespace, group: str) -> dict:
    """name -> ``comparison.Fitted``, each fitted as one stage with the command line's settings."""
    from glassjax import systems
    from glassjax.analysis import comparison

    overrides = config_overrides(args, names, group=group)
    for name in names:  # every config checked before the first fit starts
        validate = getattr(systems.get(name).configure(**overrides[name]), "validated", None)
        if validate is not None:
            validate()
    return {name: stages.run(name, comparison.fit, name, dataset, seed=args.seed, **overrides[name]) for name in names}


def print_result(result: dict) -> None:
    """The per-layer table and the accuracies, as text."""
    print(f"{result['dataset']}: group {result['group']}, metrics on {result['n_fit_images']} fit images "
          f"(x {result['group_order']} with their orbits) and {result['n_eval_images']} test images")
    print_table(result["layers"], LAYER_COLUMNS)
    ridges = sorted({(r["ridge"], r["name"]) for r in result["layers"]})
    scaled = [name for ridge, name in ridges if ridge != result["ridge"]]
    print(f"ridge {result['ridge']:g} relative to the mean eigenvalue"
          + (f"; scaled up for layers wider than their fit rows: {', '.join(scaled)}" if scaled else ""))
    for name, scores in result["accuracy"].items():
        if scores is None:
            print(f"{name}: accuracy not measured (its scores do not have one output per class)")
        else:
            print(f"{name}: accuracy {scores['accuracy']:.4f} clean, {scores['accuracy_transformed']:.4f} under random "
                  f"{result['group']}")
