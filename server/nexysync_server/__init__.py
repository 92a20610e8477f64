"""NexySync server: the Falcon ASGI API, its MongoDB store and the embedded dev database."""

__version__ = "0.1.0"
