"""Auth under pressure: own users files, and valid users served through a flood of bad ones."""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

import bcrypt
import httpx

from tests.support.users import AUTH

if TYPE_CHECKING:
    from pathlib import Path

FLOOD = 300


def test_users_file_replaces_the_demo_users(make_echod: Any, tmp_path: Path) -> None:
    """With --users-file, its users are accepted, the demo users are not, and no warning."""
    users = tmp_path / "users.htpasswd"
    users.write_text(
        "carol:"
        + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(5)).decode().replace("$2b$", "$2y$", 1)
        + "\n"
    )
    echod = make_echod("--users-file", str(users))
    assert (
        httpx.post(echod.url + "/api/echo", content=b"{}", auth=("carol", "s3cret")).status_code
        == 200
    )
    assert httpx.post(echod.url + "/api/echo", content=b"{}", auth=AUTH).status_code == 401
    assert not any("demo users" in line["message"] for line in echod.log_lines())


def test_valid_users_keep_succeeding_during_a_wrong_password_flood(make_echod: Any) -> None:
    """Hundreds of distinct wrong passwords at once: valid requests all succeed meanwhile.

    The flood is answered 401 (hashed) or 503 (the bounded hashing queue is full).
    """
    echod = make_echod()
    assert httpx.post(echod.url + "/api/echo", content=b"{}", auth=AUTH).status_code == 200

    async def scenario() -> tuple[list[int], list[int]]:
        limits = httpx.Limits(max_connections=100)
        async with (
            httpx.AsyncClient(base_url=echod.url, limits=limits, timeout=60) as flooder,
            httpx.AsyncClient(base_url=echod.url, auth=AUTH, timeout=60) as user,
        ):

            async def attack(n: int) -> int:
                header = "Basic " + base64.b64encode(f"remarkablebob:wrong-{n}".encode()).decode()
                response = await flooder.post(
                    "/api/echo", content=b"{}", headers={"authorization": header}
                )
                return response.status_code

            async def valid() -> list[int]:
                return [
                    (await user.post("/api/echo", content=b"{}")).status_code for _ in range(50)
                ]

            flood = asyncio.gather(*(attack(n) for n in range(FLOOD)))
            return await flood, await valid()

    flood_statuses, valid_statuses = asyncio.run(scenario())
    assert valid_statuses == [200] * 50
    assert set(flood_statuses) <= {401, 503}
    assert flood_statuses.count(503) > 0, "the hashing queue never filled: it is not bounded"
    assert flood_statuses.count(401) > 0
