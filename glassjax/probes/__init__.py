"""Probes: models trained on top of a fitted system to explain it (input_signal, explainer)."""
