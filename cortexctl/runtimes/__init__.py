"""Runtimes: where engines run (supervised processes or Docker containers)."""
