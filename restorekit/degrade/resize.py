"""Placeholder: filled in by the degradation work of issue 2."""
