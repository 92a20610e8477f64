"""Abuse of the ways in without a key: password guessing, request floods, mass registration.

One server with tiny limits, told to believe X-Forwarded-For from 127.0.0.1 (``dev`` believes
no proxy unless told), so each test speaks from its own made-up address.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from nexysync_server.security import scrypt_hash

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery"
LIMITS = {
    "NEXYSYNC_LOGIN_FAILURES_PER_ACCOUNT": "4",
    "NEXYSYNC_LOGIN_FAILURES_PER_ACCOUNT_IP": "2",
    "NEXYSYNC_AUTH_REQUESTS_PER_IP_PER_MINUTE": "6",
    "NEXYSYNC_REGISTRATIONS_PER_IP_PER_HOUR": "2",
    "NEXYSYNC_HUMAN_RATE_LIMIT_PER_MINUTE": "5",
    "NEXYSYNC_FORWARDED_ALLOW_IPS": "127.0.0.1",
}


@pytest.fixture(scope="module")
def server(module_dev_servers: Callable[..., Any]) -> Any:
    return module_dev_servers(LIMITS)


def _from(server: Any, ip: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"X-Forwarded-For": ip}, timeout=10)


def _audit(server: Any) -> Any:
    return MongoClient(server.banner()["Database"])["nexysync"]["audit"]


def _register(server: Any, ip: str) -> str:
    email = f"user-{secrets.token_hex(4)}@example.test"
    body = {"email": email, "name": "User", "password": PASSWORD, "tos_accepted": True}
    assert _from(server, ip).post("/v1/auth/register", json=body).status_code == 201
    return email


def _login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def _assert_429(response: httpx.Response, code: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert int(response.headers["Retry-After"]) >= 1


def test_a_burst_of_guesses_gets_no_more_password_checks_than_the_limit(server: Any) -> None:
    # 30 wrong passwords at once, each from its own address (so only the account's limit of 4
    # applies), with the right one among them. The failure is counted before the slow password
    # check: no burst gets a fifth check, and the right password is not let in past the limit.
    email = _register(server, "198.51.101.1")
    guesses = [(f"198.51.101.{10 + n}", "wrong-guess-123") for n in range(30)]
    guesses.insert(25, ("198.51.101.200", PASSWORD))

    def attempt(guess: tuple[str, str]) -> httpx.Response:
        with _from(server, guess[0]) as client:
            return _login(client, email, guess[1])

    with ThreadPoolExecutor(max_workers=len(guesses)) as pool:
        answers = list(pool.map(attempt, guesses))
    checked_wrong = [a for (_, password), a in zip(guesses, answers, strict=True) if a.status_code == 401]
    assert len(checked_wrong) <= 4
    for (_, password), answer in zip(guesses, answers, strict=True):
        if answer.status_code != 401 and not (password == PASSWORD and answer.status_code == 200):
            _assert_429(answer, "TOO_MANY_FAILED_LOGINS")
    # Four failures are held now, whatever the order was: the right password is refused.
    with _from(server, "198.51.101.201") as client:
        _assert_429(_login(client, email, PASSWORD), "TOO_MANY_FAILED_LOGINS")


def test_password_guessing_locks_the_account_even_for_the_right_password(server: Any) -> None:
    email = _register(server, "198.51.100.1")
    first, second, third = (_from(server, f"198.51.100.{n}") for n in (2, 3, 4))

    assert [_login(first, email, "wrong-guess-123").status_code for _ in range(2)] == [401, 401]
    # Two failures from one address spend that address's tries at this account...
    _assert_429(_login(first, email, PASSWORD), "TOO_MANY_FAILED_LOGINS")
    # ...but not another address's, until the account's own four are spent.
    assert [_login(second, email, "wrong-guess-123").status_code for _ in range(2)] == [401, 401]
    for _ in range(5):
        _assert_429(_login(third, email, PASSWORD), "TOO_MANY_FAILED_LOGINS")

    entries = list(_audit(server).find({"target": f"email:{email}"}))
    # One entry per counted failure, one per lock and window; not one per refused try.
    assert sorted(entry["outcome"] for entry in entries) == ["TOO_MANY_FAILED_LOGINS"] * 2 + ["refused"] * 4
    other = _register(server, "198.51.100.5")
    assert _login(third, other, PASSWORD).status_code == 200  # other accounts are not affected


def test_auth_requests_per_address_are_limited_and_audited_once(server: Any) -> None:
    client = _from(server, "198.51.100.20")

    def burst(count: int) -> list[int]:
        return [_login(client, f"nobody-{n}@example.test", "wrong-guess-123").status_code for n in range(count)]

    statuses = burst(7)
    if statuses[-1] != 429:  # the burst straddled a minute boundary: one more
        statuses = burst(7)
    assert statuses == [401] * 6 + [429]
    for _ in range(3):
        _assert_429(_login(client, "nobody@example.test", "wrong-guess-123"), "RATE_LIMITED")
    assert _audit(server).count_documents({"action": "limit.auth-ip", "target": "ip:198.51.100.20"}) >= 1
    assert _audit(server).count_documents({"action": "limit.auth-ip", "target": "ip:198.51.100.20"}) <= 2
    # Another address is served as usual.
    assert _login(_from(server, "198.51.100.21"), "nobody@example.test", "wrong-guess-123").status_code == 401


def test_registrations_per_address_are_limited_so_email_taken_is_no_oracle(server: Any) -> None:
    ip = "198.51.100.30"
    taken = _register(server, ip)
    _register(server, ip)
    client = _from(server, ip)
    for email in (taken, f"new-{secrets.token_hex(4)}@example.test"):
        body = {"email": email, "name": "User", "password": PASSWORD, "tos_accepted": True}
        _assert_429(client.post("/v1/auth/register", json=body), "TOO_MANY_REGISTRATIONS")


def test_human_routes_are_limited_per_user(server: Any) -> None:
    ip = "198.51.100.40"
    email = _register(server, ip)
    token = _login(_from(server, ip), email, PASSWORD).json()["access_token"]
    owner = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"})
    statuses = [owner.get("/v1/projects").status_code for _ in range(6)]
    if statuses[-1] != 429:  # straddled a minute boundary
        statuses = [owner.get("/v1/projects").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = owner.get("/v1/projects")
    _assert_429(refused, "RATE_LIMITED")
    assert "user" in refused.json()["detail"]
    again = owner.get("/v1/projects")  # one more refusal: still one audit entry per window
    entries = _audit(server).count_documents({"action": "limit.user_requests", "outcome": "RATE_LIMITED"})
    assert again.status_code == 429 and 1 <= entries <= 2  # 2 only if the tries straddled a minute


def test_an_old_scrypt_hash_is_replaced_at_the_next_login(server: Any) -> None:
    ip = "198.51.100.50"
    email = _register(server, ip)
    users = MongoClient(server.banner()["Database"])["nexysync"]["users"]
    users.update_one({"email": email}, {"$set": {"password_hash": scrypt_hash(PASSWORD)}})

    assert _login(_from(server, ip), email, PASSWORD).status_code == 200
    stored = users.find_one({"email": email})["password_hash"]
    assert stored.startswith("argon2id$64$1$1$")  # the test servers' cost (see server_env.py)
    assert _login(_from(server, ip), email, PASSWORD).status_code == 200


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(module_dev_servers: Callable[..., Any]) -> None:
    # Nothing at 127.0.0.1 is trusted here: every request counts against 127.0.0.1 itself.
    settings = {"NEXYSYNC_FORWARDED_ALLOW_IPS": "10.255.255.1", "NEXYSYNC_AUTH_REQUESTS_PER_IP_PER_MINUTE": "3"}
    dev = module_dev_servers(settings)
    statuses = [
        _login(_from(dev, f"203.0.113.{n}"), "nobody@example.test", "wrong-guess-123").status_code for n in range(4)
    ]
    if statuses[-1] != 429:  # straddled a minute boundary
        statuses = [
            _login(_from(dev, f"203.0.113.{n}"), "nobody@example.test", "wrong-guess-123").status_code for n in range(4)
        ]
    assert statuses == [401, 401, 401, 429]
    assert {e["source_ip"] for e in _audit(dev).find({"action": "auth.login"})} == {"127.0.0.1"}


def test_dev_believes_no_proxy_unless_told(module_dev_servers: Callable[..., Any]) -> None:
    # Without the setting, a local process cannot choose the address its requests count against.
    dev = module_dev_servers({"NEXYSYNC_AUTH_REQUESTS_PER_IP_PER_MINUTE": "3"})
    statuses = [
        _login(_from(dev, f"198.51.100.{n}"), "nobody@example.test", "wrong-guess-123").status_code for n in range(4)
    ]
    if statuses[-1] != 429:  # straddled a minute boundary
        statuses = [
            _login(_from(dev, f"198.51.100.{n}"), "nobody@example.test", "wrong-guess-123").status_code
            for n in range(4)
        ]
    assert statuses == [401, 401, 401, 429]
    assert {e["source_ip"] for e in _audit(dev).find({"action": "auth.login"})} == {"127.0.0.1"}
