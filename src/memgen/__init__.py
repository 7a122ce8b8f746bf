"""memgen: neuron-level differentiation of memorization and generalization, reproduced under DVC."""
