"""Pairing slots and devices over HTTP: single use, expiry, burning, limits, tokens, and one project's reach."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from realtime_support import EventStream, Team

from nexysync_server.ids import new_id

pytestmark = pytest.mark.e2e


def b64(size: int = 33) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(size)).decode().rstrip("=")


def accept_body(name: str = "laptop") -> dict[str, Any]:
    return {"msg": b64(), "public_key": b64(32), "name": name, "confirm": b64(32)}


def offer(team: Team, **extra: Any) -> dict[str, Any]:
    answer = team.owner.post("/v1/pairing", json={"project_id": team.project_id, "msg": b64(), **extra})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def device_body(**extra: Any) -> dict[str, Any]:
    return {"id": new_id(), "name": "laptop", "public_key": b64(32), "attestation": "0a1b2c3d." + b64(32), **extra}


def test_a_slot_is_accepted_once_and_finished_by_its_owner_only(dev_server: Any) -> None:
    team = Team(dev_server.base_url, [])
    slot = offer(team)
    number = slot["number"]
    assert (slot["state"], slot["accept_msg"], slot["sealed"]) == ("waiting", None, None)
    assert 1 <= int(number) <= 9999
    public = httpx.Client(base_url=dev_server.base_url, timeout=10)
    seen = public.get(f"/v1/pairing/{number}").json()
    assert (seen["state"], seen["offer_msg"]) == ("waiting", slot["offer_msg"])
    assert "project_id" not in seen  # the slot does not say whose project it is

    body = accept_body()
    accepted = public.post(f"/v1/pairing/{number}/accept", json=body)
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["state"], accepted.json()["public_key"]) == ("accepted", body["public_key"])
    # One guess per code: a second accept, right or wrong, is refused and changes nothing.
    again = public.post(f"/v1/pairing/{number}/accept", json=accept_body("mallory"))
    assert (again.status_code, again.json()["code"]) == (409, "PAIRING_USED")
    assert public.get(f"/v1/pairing/{number}").json()["name"] == "laptop"

    # Another user cannot finish or burn it: to them it does not exist.
    stranger = Team(dev_server.base_url, [])
    finish = {"confirm": b64(32), "sealed": b64(200)}
    refused = stranger.owner.post(f"/v1/pairing/{number}/finish", json=finish)
    assert (refused.status_code, refused.json()["code"]) == (404, "PAIRING_NOT_FOUND")
    assert stranger.owner.delete(f"/v1/pairing/{number}").status_code == 404
    # Nor can anyone without a token.
    assert public.post(f"/v1/pairing/{number}/finish", json=finish).status_code == 401

    done = team.owner.post(f"/v1/pairing/{number}/finish", json=finish)
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["sealed"]) == ("done", finish["sealed"])
    # Finishing again with the same box answers again; with another box it is refused.
    assert team.owner.post(f"/v1/pairing/{number}/finish", json=finish).status_code == 200
    other = team.owner.post(f"/v1/pairing/{number}/finish", json={"confirm": b64(32), "sealed": b64(10)})
    assert (other.status_code, other.json()["code"]) == (409, "PAIRING_NOT_ACCEPTED")
    assert public.get(f"/v1/pairing/{number}").json()["sealed"] == finish["sealed"]


def test_a_burned_slot_refuses_the_right_code_and_a_waiting_read_sees_it_burn(dev_server: Any) -> None:
    team = Team(dev_server.base_url, [])
    number = offer(team)["number"]
    public = httpx.Client(base_url=dev_server.base_url, timeout=30)
    assert public.post(f"/v1/pairing/{number}/accept", json=accept_body()).status_code == 200

    async def wait_then_burn() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=dev_server.base_url, timeout=30) as client:
            waiting = asyncio.create_task(client.get(f"/v1/pairing/{number}", params={"wait": 10, "state": "accepted"}))
            await asyncio.sleep(0.5)
            assert not waiting.done()
            started = time.monotonic()
            burned = await client.delete(f"/v1/pairing/{number}", headers=dict(team.owner.headers))
            assert burned.status_code == 204
            answer = await waiting
            assert time.monotonic() - started < 3
            return dict(answer.json())

    assert asyncio.run(wait_then_burn())["state"] == "burned"
    refused = team.owner.post(f"/v1/pairing/{number}/finish", json={"confirm": b64(32), "sealed": b64()})
    assert (refused.status_code, refused.json()["code"]) == (409, "PAIRING_NOT_ACCEPTED")
    late = public.post(f"/v1/pairing/{number}/accept", json=accept_body())
    assert (late.status_code, late.json()["code"]) == (409, "PAIRING_USED")


def test_an_expired_slot_is_shown_expired_and_refuses_an_accept(dev_server: Any) -> None:
    team = Team(dev_server.base_url, [])
    number = offer(team, ttl_s=1)["number"]
    time.sleep(1.2)
    public = httpx.Client(base_url=dev_server.base_url, timeout=10)
    assert public.get(f"/v1/pairing/{number}").json()["state"] == "expired"
    refused = public.post(f"/v1/pairing/{number}/accept", json=accept_body())
    assert (refused.status_code, refused.json()["code"]) == (409, "PAIRING_EXPIRED")


def test_bad_pairing_requests_get_clear_errors(dev_server: Any) -> None:
    team = Team(dev_server.base_url, [])
    public = httpx.Client(base_url=dev_server.base_url, timeout=10)
    unknown = public.get("/v1/pairing/0123")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "BAD_PAIRING_NUMBER")
    assert public.get("/v1/pairing/1", params={"wait": 99}).status_code == 400
    missing = public.post("/v1/pairing/9999/accept", json={"msg": "x"})
    assert missing.status_code == 422
    stranger = Team(dev_server.base_url, [])
    foreign = stranger.owner.post("/v1/pairing", json={"project_id": team.project_id, "msg": b64()})
    assert (foreign.status_code, foreign.json()["code"]) == (404, "PROJECT_NOT_FOUND")
    assert public.post("/v1/pairing", json={"project_id": team.project_id, "msg": b64()}).status_code == 401


def test_pairing_is_limited_per_user_and_per_address(dev_servers: Any, tmp_path: Path) -> None:
    server = dev_servers(
        tmp_path / "data",
        {"NEXYSYNC_PAIRINGS_PER_USER_PER_HOUR": "2", "NEXYSYNC_PAIRING_ACCEPTS_PER_IP_PER_HOUR": "3"},
    )
    team = Team(server.base_url, [])
    numbers = [offer(team)["number"], offer(team)["number"]]
    third = team.owner.post("/v1/pairing", json={"project_id": team.project_id, "msg": b64()})
    assert (third.status_code, third.json()["code"]) == (429, "TOO_MANY_PAIRINGS")
    public = httpx.Client(base_url=server.base_url, timeout=10)
    codes = [public.post(f"/v1/pairing/{numbers[0]}/accept", json=accept_body()).status_code for _ in range(3)]
    assert codes == [200, 409, 409]
    # A guesser spraying other slots from the same address is stopped before it reaches them.
    spray = public.post(f"/v1/pairing/{numbers[1]}/accept", json=accept_body())
    assert (spray.status_code, spray.json()["code"]) == (429, "TOO_MANY_PAIRINGS")
    assert public.get(f"/v1/pairing/{numbers[1]}").json()["state"] == "waiting"


def test_devices_register_seal_read_and_revoke(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["watcher"])
    created = team.owner.post(f"/v1/projects/{team.project_id}/devices", json=device_body())
    assert created.status_code == 201, created.text
    device, token = created.json()["device"], created.json()["token"]
    assert token.startswith("nsdev_") and (device["sealed_at"], device["key_id"]) == (None, None)
    box = httpx.Client(base_url=dev_server.base_url, timeout=10, headers={"Authorization": f"Bearer {token}"})
    empty = box.get("/v1/device/keys").json()
    assert (empty["device_id"], empty["project_id"], empty["sealed"]) == (device["id"], team.project_id, None)
    listed = team.owner.get(f"/v1/projects/{team.project_id}/devices").json()["data"]
    assert [item["id"] for item in listed] == [device["id"]] and "token" not in listed[0]

    async def seal_and_hear() -> dict[str, Any]:
        async with EventStream(dev_server.base_url, team.keys["watcher"]) as stream:
            sealed = team.owner.put(
                f"/v1/projects/{team.project_id}/device-keys",
                json={"boxes": [{"device_id": device["id"], "key_id": "0a1b2c3d", "sealed": "c2VhbGVk"}]},
            )
            assert sealed.status_code == 200, sealed.text
            while True:
                frame = await stream.frame()
                if frame.event == "device_keys":
                    assert frame.data is not None
                    return dict(frame.data["data"])

    assert asyncio.run(seal_and_hear()) == {"device_ids": [device["id"]]}
    opened = box.get("/v1/device/keys").json()
    assert (opened["key_id"], opened["sealed"]) == ("0a1b2c3d", "c2VhbGVk")

    # All or none: a box for a device that is not the project's stores nothing.
    mixed = team.owner.put(
        f"/v1/projects/{team.project_id}/device-keys",
        json={
            "boxes": [
                {"device_id": device["id"], "key_id": "ffffffff", "sealed": "bmV3"},
                {"device_id": new_id(), "key_id": "ffffffff", "sealed": "bmV3"},
            ]
        },
    )
    assert (mixed.status_code, mixed.json()["code"]) == (409, "DEVICE_NOT_FOUND")
    assert box.get("/v1/device/keys").json()["key_id"] == "0a1b2c3d"

    # Another owner sees none of it and changes none of it.
    stranger = Team(dev_server.base_url, [])
    assert stranger.owner.get(f"/v1/projects/{team.project_id}/devices").status_code == 404
    assert stranger.owner.delete(f"/v1/projects/{team.project_id}/devices/{device['id']}").status_code == 404
    assert box.get("/v1/device/keys").status_code == 200
    # An agent key or an owner token is not a device token.
    assert httpx.get(f"{dev_server.base_url}/v1/device/keys", headers=team.auth("watcher")).status_code == 401

    assert team.owner.delete(f"/v1/projects/{team.project_id}/devices/{device['id']}").status_code == 204
    revoked = box.get("/v1/device/keys")
    assert (revoked.status_code, revoked.json()["code"]) == (401, "INVALID_DEVICE_TOKEN")
    assert team.owner.get(f"/v1/projects/{team.project_id}/devices").json()["data"] == []
    audit = team.owner.get(f"/v1/projects/{team.project_id}/audit").json()["data"]
    actions = [entry["action"] for entry in audit]
    assert {"device.register", "device.keys.seal", "device.revoke"} <= set(actions)


def test_a_device_id_is_registered_once_and_the_device_limit_holds(dev_servers: Any, tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_MAX_DEVICES_PER_PROJECT": "1"})
    team = Team(server.base_url, [])
    body = device_body()
    assert team.owner.post(f"/v1/projects/{team.project_id}/devices", json=body).status_code == 201
    again = team.owner.post(f"/v1/projects/{team.project_id}/devices", json=body)
    assert again.status_code in (403, 409)
    full = team.owner.post(f"/v1/projects/{team.project_id}/devices", json=device_body())
    assert (full.status_code, full.json()["code"]) == (403, "DEVICE_LIMIT")


def test_deleting_a_project_deletes_its_devices_and_slots(dev_server: Any) -> None:
    team = Team(dev_server.base_url, [])
    token = team.owner.post(f"/v1/projects/{team.project_id}/devices", json=device_body()).json()["token"]
    slot = offer(team)
    device = httpx.Client(base_url=dev_server.base_url, timeout=10, headers={"Authorization": f"Bearer {token}"})
    assert device.get("/v1/device/keys").status_code == 200
    assert team.owner.delete(f"/v1/projects/{team.project_id}", params={"confirm": "true"}).status_code == 204
    assert device.get("/v1/device/keys").status_code == 401
    gone = httpx.get(f"{dev_server.base_url}/v1/pairing/{slot['number']}")
    # 404, unless another test's slot drew the freed number since.
    assert gone.status_code == 404 or gone.json()["offer_msg"] != slot["offer_msg"]
