"""Benchmark workloads shared by ``glassjax bench`` and the scripts in ``benchmarks/``."""
from glassjax.bench.workloads import (
    environment, equivariance_workload, glassbox_datasets, glassbox_workload, memory_workload, streaming_memory,
    synthetic_split, write_json,
)

__all__ = ["environment", "equivariance_workload", "glassbox_datasets", "glassbox_workload", "memory_workload",
           "streaming_memory", "synthetic_split", "write_json"]
