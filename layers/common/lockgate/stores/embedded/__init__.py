"""Embedded adapters: SQLite in the data directory, nothing to start."""
