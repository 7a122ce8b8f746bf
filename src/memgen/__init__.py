"""memgen: neuron-level differentiation of memorization and generalization, reproduced under DVC."""
import os

# Before torch loads MKL and OpenMP: neither may pick fewer threads than pinned (params parallel.threads)
# on its own, so a run's thread count, which its bytes follow, is the one asked for.
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
os.environ.setdefault("OMP_DYNAMIC", "FALSE")
