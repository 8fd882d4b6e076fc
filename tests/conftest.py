"""Test configuration: 8 emulated CPU devices and strict JAX promotion rules.

XLA_FLAGS must be set before JAX initialises its backend, so it is set at import.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
