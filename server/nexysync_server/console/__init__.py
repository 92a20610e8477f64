"""The NexySync Console: a zero-knowledge web dashboard served by the API at ``/console/``.

The static assets (plain ES modules, no build step) ship inside this package; the browser
decrypts everything with the project key, which never leaves it.
"""
