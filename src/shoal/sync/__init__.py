"""The integration framework: what an integration author writes against."""

from shoal.sync.integration import Integration

__all__ = ["Integration"]
