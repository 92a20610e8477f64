"""``nexysync register``, ``login``, ``logout``, ``password``, ``delete-account``, ``whoami``: the account."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from nexysync import APIError
from nexysync_cli.context import Context
from nexysync_cli.credentials import StoredSession
from nexysync_cli.errors import CliError
from nexysync_cli.secret_input import read_secret

__all__ = ["run_delete_account", "run_login", "run_logout", "run_password", "run_register", "run_whoami"]

#: Lets scripts give the new password of ``nexysync password`` without a prompt.
ENV_NEW_PASSWORD = "NEXYSYNC_NEW_PASSWORD"


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
    # The API takes an account only with its terms accepted (tos_accepted): say so before anything.
    ctx.output.progress(f"Registering accepts the terms of service of the NexySync server at {url}.")
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
    """Revoke the session (with ``--all``, every session of the account) and forget it here."""
    url = ctx.api_url
    session = ctx.credentials.load(url)
    if session is None:
        ctx.output.result({"api_url": url, "signed_out": False}, f"Not signed in to {url}.")
        return 0
    everywhere = bool(getattr(ctx.args, "all", False))
    if everywhere:
        # Unlike a single logout, this needs a working session: an error here is the user's to see.
        ctx.owner().call(lambda client: client.auth.logout_all())
        ctx.credentials.delete(url)
        text = f"Signed out of {url} everywhere: every session of {session.email} has ended."
        ctx.output.result({"api_url": url, "signed_out": True, "revoked": True, "everywhere": True}, text)
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


def _new_password(ctx: Context) -> str:
    source = getattr(ctx.args, "new_password_file", None)
    if source:
        return read_secret(source, "new password", prompt="New password: ", strip=False)
    given = os.environ.get(ENV_NEW_PASSWORD)
    if given:
        return given
    if not sys.stdin.isatty():
        raise CliError(f"no new password: set {ENV_NEW_PASSWORD} or pass --new-password-file FILE", code="NO_PASSWORD")
    first = getpass.getpass("New password: ")
    if getpass.getpass("New password again: ") != first:
        raise CliError("the new passwords differ", code="PASSWORD_MISMATCH")
    return first


def run_password(ctx: Context) -> int:
    """Change the password (the current one asked first); every other session ends, this one is renewed."""
    owner = ctx.owner()
    current = ctx.password()
    new = _new_password(ctx)
    tokens = owner.call(lambda client: client.auth.change_password(current_password=current, new_password=new))
    session = StoredSession.from_tokens(owner.api_url, tokens)
    ctx.credentials.save(session)
    text = f"Changed the password of {session.email}; every other session has ended."
    ctx.output.result({**_public(session), "password_changed": True}, text)
    return 0


def run_delete_account(ctx: Context) -> int:
    """Delete the account and every project it owns, after confirmation and the password."""
    owner = ctx.owner()
    email = owner.session.email
    if not ctx.args.yes and not ctx.confirm(
        f"Delete the account {email} on {owner.api_url} and every project it owns, with all their data?"
    ):
        raise CliError("not deleted: confirm on the terminal or pass --yes", code="NOT_CONFIRMED")
    password = ctx.password()
    owner.call(lambda client: client.auth.delete_account(password=password))
    ctx.credentials.delete(owner.api_url)
    text = f"Deleted the account {email} and its projects; project keys kept on this machine are no longer of use."
    ctx.output.result({"api_url": owner.api_url, "email": email, "deleted": True}, text)
    return 0


def run_whoami(ctx: Context) -> int:
    """Show who is signed in to the API (from the saved session; no request)."""
    url = ctx.api_url
    session = ctx.credentials.load(url)
    if session is None:
        raise CliError(f"not signed in to {url}: run `nexysync login`", code="NOT_SIGNED_IN")
    ctx.output.result(_public(session), f"{session.email} ({session.name}) on {url}")
    return 0
