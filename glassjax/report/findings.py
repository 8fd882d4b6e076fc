"""Measured statements for the report, phrased from the numbers of ``comparison.run``.

The first system of ``result["systems"]`` is the subject: every other system is set against
it, and a statement goes under "loses" only when the subject's number is the worse one, or
when an exact invariance of its classifier's layer is a structural blind spot (a 180-degree
turn in the group: a 6 becomes a 9). Systems are told apart only by what the numbers say.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from glassjax.core import groups

__all__ = ["findings", "EXACT"]

# A layer whose relative error is below this is treated as exactly invariant / equivariant
# (float32 rounding of the exact constructions is ~1e-7).
EXACT = 1e-4


def _row(rows: Sequence[Mapping], name: str) -> Mapping | None:
    return next((r for r in rows if r["name"] == name), None)


def _contains_half_turn(group: groups.Group) -> bool:
    """Whether some element of ``group`` turns an image by 180 degrees (checked on a 12 x 12 probe)."""
    probe = np.arange(144, dtype=np.float32).reshape(12, 12, 1)
    for g in range(group.order):
        try:
            moved = np.asarray(group.act(g, probe))
        except ValueError:  # a group that cannot act on 12 x 12 images has no half turn of them either
            return False
        # rot:N resamples bilinearly, exact up to float rounding at 180 degrees.
        if np.allclose(moved, probe[::-1, ::-1], atol=1e-3):
            return True
    return False


def _excess(row: Mapping) -> float:
    """Equivariance error above the fit's own floor (its error for the identity element)."""
    return row["equivariance_error"] - row["equivariance_error_identity"]


def _most_equivariant(rows: Sequence[Mapping]) -> Mapping | None:
    """The layer with the least equivariance error above its floor among layers that are not invariant."""
    moving = [r for r in rows if r["invariance_error"] > EXACT]
    return min(moving, key=_excess) if moving else None


def findings(result: Mapping) -> dict[str, list[str]]:
    """{"loses": [...], "wins": [...], "notes": [...]}: plain-text statements about the subject (the first
    system) against each other system; "notes" are measured failings of the other systems themselves."""
    rows, accuracy, systems = result["layers"], result["accuracy"], result["systems"]
    group = groups.get(result["group"])
    names = list(systems)
    subject, others = names[0], names[1:]
    title = {name: info["title"] for name, info in systems.items()}
    layers_of = {name: [r for r in rows if r.get("system") == name] for name in names}
    representation = {name: _row(rows, info["representation"]) for name, info in systems.items()}
    loses, wins, notes = [], [], []
    mine = accuracy.get(subject)

    for other in others:
        theirs = accuracy.get(other)
        if mine is None or theirs is None:
            continue
        for key, what in (("accuracy", "clean test accuracy"),
                          ("accuracy_transformed", f"test accuracy under random {group.name} elements")):
            text = f"{what}: {title[subject]} {mine[key]:.3f}, {title[other]} {theirs[key]:.3f} ({mine['n_test']} test images)"
            if mine[key] < theirs[key]:
                loses.append(f"Lower {text}.")
            else:
                wins.append(f"{'Higher' if mine[key] > theirs[key] else 'Equal'} {text}.")

    rep = representation[subject]
    if mine is not None and _contains_half_turn(group):
        scored = [n for n in names if accuracy.get(n) is not None]
        text = (f"Turning every test image by 180 degrees, the turn that makes a 6 a 9, changes "
                f"{mine['turned_changed']} of {mine['n_test']} predictions of {title[subject]}")
        text += "".join(f"; {accuracy[n]['turned_changed']} of {title[n]}'s" for n in scored[1:]) + ". "
        blind = rep is not None and rep["invariance_error"] < EXACT
        if blind:
            text += (f"The layer its classifier reads ({rep['layer']}) is exactly invariant to {group.name} "
                     f"(relative change {rep['invariance_error']:.1e}), so an image and its turned copy get the same "
                     "features and the same label: it can tell a 6 from a 9 only by differences in handwriting that "
                     "survive the turn, never by orientation. ")
        classes = list(result["classes"])
        if "6" in classes and "9" in classes:
            six, nine = classes.index("6"), classes.index("9")

            def mixed(scores):
                counts = scores["confusion"]
                return counts[six][nine] + counts[nine][six], sum(counts[six]) + sum(counts[nine])

            wrong, total = mixed(mine)
            text += f"Here it calls {wrong} of the {total} test 6s and 9s by the other's name"
            others_mixed = ", ".join(f"{title[n]} {mixed(accuracy[n])[0]}" for n in scored[1:])
            text += f" ({others_mixed}). " if others_mixed else ". "
        for n in scored[1:]:
            theirs, their_rep = accuracy[n], representation[n]
            if theirs["turned_changed"] > 0 and their_rep is not None and their_rep["invariance_error"] > EXACT:
                text += (f"{title[n]} keeps the orientation ({theirs['turned_changed']} of {theirs['n_test']} "
                         f"predictions change) and pays for it under random {group.name} elements: accuracy "
                         f"{theirs['accuracy_transformed']:.3f} against {theirs['accuracy']:.3f} clean. ")
        (loses if blind else wins).append(text.strip())

    for other in others:
        theirs = representation[other]
        if rep is None or theirs is None:
            continue
        # Like with like: each system's network input rotated (Gruver et al.'s Lie derivative), the
        # layers its classifiers read, and end to end the class probabilities of both.
        text = ((f"Invariance to {group.name} is exact only for its {group.order} elements: under" if
                 rep["invariance_error"] < EXACT else "Under")
                + f" small continuous rotation of each network's own input {title[subject]}'s {rep['layer']} changes "
                f"at {rep['lie_derivative']:.2f} per radian relative to its norm (Lie derivative), "
                f"{title[other]}'s {theirs['layer']} at {theirs['lie_derivative']:.2f}")
        if rep.get("e2e_lie_derivative") is not None and theirs.get("e2e_lie_derivative") is not None:
            text += (f"; end to end their class probabilities change at {rep['e2e_lie_derivative']:.3f} and "
                     f"{theirs['e2e_lie_derivative']:.3f} per radian")
        text += "."
        (loses if rep["lie_derivative"] > theirs["lie_derivative"] else wins).append(text)

    for other in others:
        if not layers_of[subject] or not layers_of[other]:
            continue
        best, theirs = (max(layers_of[n], key=lambda r: r["fisher_ratio"]) for n in (subject, other))
        text = (f"class separation (Fisher ratio tr S_b / tr S_w on the test images): best {title[subject]} layer "
                f"{best['layer']} {best['fisher_ratio']:.3g}, best {title[other]} layer {theirs['layer']} "
                f"{theirs['fisher_ratio']:.3g}")
        (loses if best["fisher_ratio"] < theirs["fisher_ratio"] else wins).append(
            f"{'Weaker' if best['fisher_ratio'] < theirs['fisher_ratio'] else 'Stronger'} {text}.")
        ours, most = _most_equivariant(layers_of[subject]), _most_equivariant(layers_of[other])
        if ours is not None and most is not None:
            text = (f"Equivariance error of {title[subject]}'s most equivariant non-invariant layer, {ours['layer']}, "
                    f"{ours['equivariance_error']:.2g}, {_excess(ours):.1e} above its fit's floor; the most equivariant "
                    f"{title[other]} layer, {most['layer']}, {most['equivariance_error']:.2g}, {_excess(most):.2g} above "
                    "its floor.")
            if ours["equivariance_error_identity"] > 0.05:
                text += (f" The floor is high: {ours['fit_rows']} fit rows for {int(np.prod(ours['shape']))} "
                         "columns leave the fit underdetermined; more --images would lower it.")
            (wins if _excess(ours) <= _excess(most) else loses).append(text)

    for name in names:
        for before, after in zip(layers_of[name], layers_of[name][1:]):
            if after["equivariance_error"] > 10 * max(before["equivariance_error"], 1e-6):
                text = (f"{title[name]}'s layer {after['layer']} is not equivariant (error "
                        f"{after['equivariance_error']:.2g}) although the layer before it, {before['layer']}, is "
                        f"({before['equivariance_error']:.1e}): a reduction fitted without the group's symmetry maps "
                        "the equivariant features onto a subspace the group does not preserve.")
                (loses if name == subject else notes).append(text)
    return {"loses": loses, "wins": wins, "notes": notes}
