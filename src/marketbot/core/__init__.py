"""Domain types, metrics and errors: pure numpy/pandas/numba, no I/O."""
