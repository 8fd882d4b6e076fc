"""Measuring systems: per-layer metrics, exactness asserts, scoring, the side-by-side comparison.

  metrics     invariance and equivariance errors, Lie derivative, separability, linear probe
  testing     assert_invariant / assert_equivariant / assert_group_axioms for users' tests
  scoring     accuracy clean and under random group elements, confusion matrices
  comparison  every registered system's layers measured side by side
"""
