"""Shoal: a self-hosted software catalog kept in sync by its integrations."""

__version__ = "0.1.0"
