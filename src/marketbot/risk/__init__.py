"""Risk rules: exits, sizing and limits, as pure compiled functions with thin wrappers."""
