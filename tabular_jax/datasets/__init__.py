"""Bundled datasets (see ATTRIBUTION.md)."""
