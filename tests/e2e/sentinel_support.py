"""A sentinel string in every place a client can put something, for the tests that prove it leaks nowhere."""

from __future__ import annotations

import httpx
from realtime_support import Team

SENTINEL = "NXSENTINEL7Q2W"


def requests_carrying_the_sentinel(base_url: str, team: Team) -> list[httpx.Response]:
    """Send requests with :data:`SENTINEL` in a password, an email, a kv key, a message, a query,
    a malformed body, a bad key and an unknown path; return their answers."""
    key = {"Authorization": f"Bearer {team.keys['alice']}"}
    json_key = key | {"Content-Type": "application/json"}
    signup = {"email": f"{SENTINEL.lower()}@example.test", "password": f"{SENTINEL}-pass", "tos_accepted": True}
    body = team.body("bob")
    body["payload"] = body["payload"][:-24] + SENTINEL + "A" * 10  # still base64-shaped, never decrypted
    with httpx.Client(base_url=base_url, timeout=10) as http:
        return [
            http.post("/v1/auth/login", json={"email": team.email, "password": f"{SENTINEL}-wrong-pass"}),
            http.post("/v1/auth/register", json=signup),
            http.put(f"/v1/kv/{SENTINEL}", json={"value": body["payload"]}, headers=key),
            http.post("/v1/messages", json=body, headers=key),
            http.get("/v1/messages", params={"cursor": SENTINEL}, headers=key),
            http.post("/v1/messages", content=f'{{"to": "{SENTINEL}', headers=json_key),
            http.get("/v1/me", headers={"Authorization": f"Bearer nx_{SENTINEL}"}),
            http.get(f"/v1/{SENTINEL}"),
        ]
