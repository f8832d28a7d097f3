"""The dashboard: HTML pages over the public API."""
