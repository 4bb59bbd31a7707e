"""The compiled step (being written)."""
