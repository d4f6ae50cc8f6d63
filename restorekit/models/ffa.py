"""Placeholder: filled in by the model-zoo work of issue 4."""
