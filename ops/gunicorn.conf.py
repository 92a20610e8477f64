"""Gunicorn configuration for NexySync in production (``nexysync-server serve``).

The settings live in the installed package, ``nexysync_server/gunicorn_conf.py``, so that
``nexysync-server serve`` finds them wherever the package is installed (a wheel, a container) and
this file can never drift from them. Read that module for what each value is and why.

Tune a deployment through environment variables rather than by editing:

    NEXYSYNC_BIND                  addresses to listen on, comma-separated (default 0.0.0.0:8080)
    NEXYSYNC_WORKERS               worker processes (default 2 * CPUs + 1, at most 8)
    NEXYSYNC_FORWARDED_ALLOW_IPS   proxies trusted to set X-Forwarded-* (default 127.0.0.1)
    NEXYSYNC_LOG_LEVEL             gunicorn log level (default info)

To change anything else, copy this file, override names below the import, and point
``NEXYSYNC_GUNICORN_CONF`` at the copy; ``nexysync-server serve`` then uses it instead.
Run by hand: ``gunicorn -c ops/gunicorn.conf.py 'nexysync_server.serving:api_app()'``.
"""

from nexysync_server.gunicorn_conf import *  # noqa: F403

# Example override (uncomment in your copy):
# max_requests = 10_000  # recycle workers now and then to bound memory growth
