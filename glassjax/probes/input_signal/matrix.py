"""The cross-classifier matrix and the order it shows.

  cross_matrix(on_reconstructions, accuracy)   M[A][B] = acc_B(reconstructions tuned for A) / acc_B(originals)
  order(matrix, untuned=...)                   rank by row and column means; is the pairwise relation total?
  rank_correlation(order, values)              Spearman's rho of an order against a quantity per name

Rows A are the autoencoders (the untuned one and one tuned per classifier), columns B the
classifiers. A row mean (over the other classifiers, B != A) says how much of what other
classifiers need A's reconstructions keep; a column mean (over the other tuned rows) how well B
works on signal tuned for others. The pairwise relation: A above B when M[A][B] > M[B][A] (A's
reconstructions serve B better than B's serve A). It is a total order when it is transitive
(no cycle A > B > C > A) and no pair ties.
"""
from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np

__all__ = ["cross_matrix", "order", "rank_correlation"]


def cross_matrix(on_reconstructions: Mapping[str, Mapping[str, float]], accuracy: Mapping[str, float]
                 ) -> dict[str, dict[str, float]]:
    """{row: {B: acc_B on row's reconstructions / acc_B on originals}} (NaN where B's accuracy is 0)."""
    out = {}
    for row, accs in on_reconstructions.items():
        missing = sorted(set(accuracy) - set(accs))
        if missing:
            raise ValueError(f"cross_matrix: expected an accuracy for every classifier in row {row!r}, "
                             f"missing {', '.join(missing)}")
        out[row] = {b: float(accs[b]) / float(accuracy[b]) if accuracy[b] > 0 else float("nan") for b in accuracy}
    return out


def _pairwise(matrix: Mapping[str, Mapping[str, float]], names: Sequence[str], tol: float) -> tuple[list, list]:
    """(above, ties): [(A, B, M[A][B] - M[B][A])] for A above B, and the pairs within tol."""
    above, ties = [], []
    for a, b in itertools.combinations(names, 2):
        gap = matrix[a][b] - matrix[b][a]
        if abs(gap) <= tol:
            ties.append((a, b, gap))
        elif gap > 0:
            above.append((a, b, gap))
        else:
            above.append((b, a, -gap))
    return above, ties


def _cycle(names: Sequence[str], above: list) -> list[str] | None:
    """A cycle of the relation, if any (a tournament is transitive iff it has no 3-cycle)."""
    wins = {(a, b) for a, b, _ in above}
    for a, b, c in itertools.permutations(names, 3):
        if (a, b) in wins and (b, c) in wins and (c, a) in wins:
            return [a, b, c, a]
    return None


def order(matrix: Mapping[str, Mapping[str, float]], *, untuned: str | None = None, tol: float = 0.0) -> dict:
    """The order of the classifiers in ``matrix`` (rows: ``untuned`` and one per classifier; columns:
    the classifiers). Returns {order (names by row mean, best first), row_mean, column_mean,
    above [(A, B, gap)], ties, total (bool), cycle (or None)}; ``tol`` the gap counted as a tie."""
    names = [n for n in matrix if n != untuned]
    columns = list(next(iter(matrix.values()))) if matrix else []
    if sorted(names) != sorted(columns):
        raise ValueError(f"order: expected one tuned row per classifier column, got rows {names} and "
                         f"columns {columns}")
    if len(names) < 2:
        raise ValueError(f"order: expected at least 2 classifiers, got {len(names)}")
    row_mean = {a: float(np.mean([matrix[a][b] for b in names if b != a])) for a in names}
    column_mean = {b: float(np.mean([matrix[a][b] for a in names if a != b])) for b in names}
    above, ties = _pairwise(matrix, names, tol)
    cycle = _cycle(names, above)
    ranked = sorted(names, key=lambda n: (-row_mean[n], n))
    return {"order": ranked, "row_mean": row_mean, "column_mean": column_mean,
            "above": [list(t) for t in above], "ties": [list(t) for t in ties],
            "total": cycle is None and not ties, "cycle": cycle}


def rank_correlation(ranked: Sequence[str], values: Mapping[str, float]) -> float:
    """Spearman's rho between the order ``ranked`` (best first) and ``values`` (larger first); NaN for < 3 names."""
    if len(ranked) < 3:
        return float("nan")
    from scipy.stats import spearmanr

    position = -np.arange(len(ranked), dtype=np.float64)  # best first: the largest
    rho = spearmanr(position, [float(values[n]) for n in ranked]).statistic
    return float(rho)
