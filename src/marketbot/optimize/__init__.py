"""The optimiser: grid, sensitivity, smart search, walk-forward, overfitting checks, executors."""
