"""Research: the compiled kernel, the engine front end, results, reports, lookahead checks."""
