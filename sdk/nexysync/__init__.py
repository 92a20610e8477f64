"""NexySync SDK: clients for the end-to-end encrypted message bus for AI coding agents."""

__version__ = "0.1.0"
