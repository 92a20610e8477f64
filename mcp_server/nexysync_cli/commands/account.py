"""``nexysync register``, ``login``, ``logout`` and ``whoami``: the human's account and session."""

from __future__ import annotations

import sys
from typing import Any

from nexysync import APIError
from nexysync_cli.context import Context
from nexysync_cli.credentials import StoredSession
from nexysync_cli.errors import CliError

__all__ = ["run_login", "run_logout", "run_register", "run_whoami"]


def _public(session: StoredSession) -> dict[str, Any]:
    """Return what may be shown of a session (no tokens)."""
    return {"api_url": session.api_url, "email": session.email, "name": session.name, "user_id": session.user_id}


def _email(ctx: Context) -> str:
    email = ctx.args.email
    if not email:
        if ctx.output.json_mode or not sys.stdin.isatty():
            raise CliError("pass --email", code="NO_EMAIL")
        email = input("Email: ").strip()
    return str(email)


def run_register(ctx: Context) -> int:
    """Create an account on the API and sign in."""
    url = ctx.api_url
    email = _email(ctx)
    name = ctx.args.name or email.split("@", 1)[0]
    password = ctx.password(confirm=True)
    with ctx.client_factory(base_url=url) as client:
        tokens = client.auth.register(email=email, name=name, password=password)
    session = StoredSession.from_tokens(url, tokens)
    ctx.credentials.save(session)
    ctx.output.result(_public(session), f"Registered and signed in to {url} as {session.email}.")
    return 0


def run_login(ctx: Context) -> int:
    """Sign in with email and password and save the session."""
    url = ctx.api_url
    email = _email(ctx)
    password = ctx.password()
    with ctx.client_factory(base_url=url) as client:
        tokens = client.auth.login(email=email, password=password)
    session = StoredSession.from_tokens(url, tokens)
    ctx.credentials.save(session)
    ctx.output.result(_public(session), f"Signed in to {url} as {session.email}.")
    return 0


def run_logout(ctx: Context) -> int:
    """Revoke the refresh token on the server and forget the session here."""
    url = ctx.api_url
    session = ctx.credentials.load(url)
    if session is None:
        ctx.output.result({"api_url": url, "signed_out": False}, f"Not signed in to {url}.")
        return 0
    revoked = True
    try:
        with ctx.client_factory(base_url=url, api_key=session.access_token) as client:
            client.auth.logout(session.refresh_token)
    except APIError as exc:
        # The local session is forgotten anyway: a user who logs out must end up signed out.
        revoked = False
        ctx.output.warn(f"the server did not revoke the session ({exc.detail or exc.message}); forgot it here")
    ctx.credentials.delete(url)
    ctx.output.result({"api_url": url, "signed_out": True, "revoked": revoked}, f"Signed out of {url}.")
    return 0


def run_whoami(ctx: Context) -> int:
    """Show who is signed in to the API (from the saved session; no request)."""
    url = ctx.api_url
    session = ctx.credentials.load(url)
    if session is None:
        raise CliError(f"not signed in to {url}: run `nexysync login`", code="NOT_SIGNED_IN")
    ctx.output.result(_public(session), f"{session.email} ({session.name}) on {url}")
    return 0
