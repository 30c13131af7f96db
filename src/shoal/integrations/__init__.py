"""Integrations bundled with Shoal, one package per source."""
