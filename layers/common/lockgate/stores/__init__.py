"""Data access: the ports the logic depends on, and one adapter per backend."""
