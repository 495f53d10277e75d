"""Contacts over REST: profiles, normalisation, identities, filters, paging, isolation."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx
import pytest


async def create(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await api.post("/v1/contacts", json=body)
    assert r.status_code == 201, r.text
    contact: dict[str, Any] = r.json()
    return contact


def assert_invalid(r: httpx.Response, field: str) -> None:
    """422 ``validation_error`` whose details point at ``field``."""
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert any(field in d["loc"] for d in error["details"]), error["details"]


async def test_create_stores_the_profile_in_normal_form(api: httpx.AsyncClient) -> None:
    contact = await create(
        api,
        name="  Ada Lovelace ",
        email="Ada@Example.COM",
        phone="+1 (415) 555-0100",
        country="gb",
        locale="en_gb",
        timezone="europe/london",
        birthdate="1990-05-17",
        external_id="user-1",
        attributes={"plan": "pro", "seats": 3, "flags": {"beta": True}, "dropped": None},
    )
    assert contact["id"].startswith("ct_")
    assert {k: contact[k] for k in ("name", "email", "phone", "country", "locale")} == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+14155550100",
        "country": "GB",
        "locale": "en-GB",
    }
    assert contact["timezone"] == "Europe/London"
    assert contact["birthdate"] == "1990-05-17"
    assert contact["attributes"] == {"plan": "pro", "seats": 3, "flags": {"beta": True}}
    assert contact["identities"] == []

    read = (await api.get(f"/v1/contacts/{contact['id']}")).json()
    assert read == contact


async def test_a_national_phone_number_is_read_in_the_given_country(api: httpx.AsyncClient) -> None:
    contact = await create(api, country="FR", phone="06 12 34 56 78")
    assert contact["phone"] == "+33612345678"


async def test_an_empty_contact_is_allowed(api: httpx.AsyncClient) -> None:
    contact = await create(api)
    assert contact["name"] is None and contact["attributes"] == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", 42),
        ("phone", "+1 555"),
        ("phone", "0612345678"),  # national number with no country to read it in
        ("country", "XX"),
        ("country", "USA"),
        ("locale", "english please"),
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "../etc/passwd"),
        ("birthdate", "17/05/1990"),
        ("birthdate", 643_000_000),
        ("birthdate", (date.today() + timedelta(days=1)).isoformat()),
        ("name", ""),
        ("name", "x" * 201),
        ("external_id", 17),
        ("attributes", ["not", "an", "object"]),
        ("nickname", "unknown fields are refused"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    api: httpx.AsyncClient, field: str, value: Any
) -> None:
    assert_invalid(await api.post("/v1/contacts", json={field: value}), field)


async def test_identities_given_at_creation_are_stored_normalised(api: httpx.AsyncClient) -> None:
    contact = await create(
        api,
        identities=[
            {"channel_type": "sms", "address": "+1 415-555-0100"},
            {"channel_type": "whatsapp", "address": "14155550101"},
            {"channel_type": "email", "address": "Ada@Example.com"},
            {"channel_type": "fcm", "address": "fcm-device-token-1"},
            {"channel_type": "sms", "address": "+14155550100"},  # the first one again
        ],
    )
    assert sorted((i["channel_type"], i["address"]) for i in contact["identities"]) == [
        ("email", "ada@example.com"),
        ("fcm", "fcm-device-token-1"),
        ("sms", "+14155550100"),
        ("whatsapp", "+14155550101"),
    ]


@pytest.mark.parametrize(
    ("identity", "field"),
    [
        ({"channel_type": "pigeon", "address": "x"}, "channel_type"),
        ({"channel_type": "sms", "address": "4155550100"}, "address"),
        ({"channel_type": "voice", "address": "+1 555"}, "address"),
        ({"channel_type": "email", "address": "nobody"}, "address"),
        ({"channel_type": "inapp", "address": "has spaces"}, "address"),
        ({"channel_type": "inapp"}, "address"),
    ],
)
async def test_invalid_identities_are_422(
    api: httpx.AsyncClient, identity: dict[str, str], field: str
) -> None:
    assert_invalid(await api.post("/v1/contacts", json={"identities": [identity]}), field)
    assert (await api.get("/v1/contacts")).json()["data"] == []


async def test_external_id_is_unique_per_workspace(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    first = await create(api, external_id="user-1")
    r = await api.post("/v1/contacts", json={"external_id": "user-1", "name": "Copy"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "contact_exists"
    assert r.json()["error"]["details"] == {"contact_id": first["id"]}

    second = await create(api, external_id="user-2")
    r = await api.patch(f"/v1/contacts/{second['id']}", json={"external_id": "user-1"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "contact_exists"

    # Setting a contact's own external_id again is no conflict.
    r = await api.patch(f"/v1/contacts/{first['id']}", json={"external_id": "user-1"})
    assert r.status_code == 200
    # Another workspace has its own namespace of external ids.
    assert (await other_api.post("/v1/contacts", json={"external_id": "user-1"})).status_code == 201


async def test_concurrent_creates_with_one_external_id_make_one_contact(
    api: httpx.AsyncClient,
) -> None:
    body = {"external_id": "race", "identities": [{"channel_type": "inapp", "address": "racer"}]}
    answers = await asyncio.gather(*(api.post("/v1/contacts", json=body) for _ in range(6)))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 5
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} <= {
        "contact_exists",
        "identity_taken",
    }
    assert len((await api.get("/v1/contacts")).json()["data"]) == 1


async def test_an_identity_owned_by_another_contact_blocks_the_whole_create(
    api: httpx.AsyncClient,
) -> None:
    owner = await create(api, identities=[{"channel_type": "sms", "address": "+14155550100"}])
    r = await api.post(
        "/v1/contacts",
        json={
            "external_id": "would-be",
            "identities": [
                {"channel_type": "email", "address": "new@example.com"},
                {"channel_type": "sms", "address": "+1 415 555 0100"},
            ],
        },
    )
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "identity_taken"
    assert error["details"] == {
        "channel_type": "sms",
        "address": "+14155550100",
        "contact_id": owner["id"],
    }
    assert [c["id"] for c in (await api.get("/v1/contacts")).json()["data"]] == [owner["id"]]


async def test_list_filters_match_normalised_values(api: httpx.AsyncClient) -> None:
    ada = await create(api, email="ada@example.com", phone="+14155550100", external_id="a")
    bob = await create(api, email="bob@example.com", phone="+14155550101", external_id="b")

    async def ids(query: str) -> list[str]:
        r = await api.get("/v1/contacts", params=query)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["data"]]

    assert await ids("email=ADA@example.com") == [ada["id"]]
    assert await ids("phone=%2B1 (415) 555-0101") == [bob["id"]]
    assert await ids("external_id=a") == [ada["id"]]
    assert await ids("external_id=a&email=bob@example.com") == []
    assert await ids("email=nobody@example.com") == []
    assert await ids("") == sorted([ada["id"], bob["id"]], reverse=True)  # newest first


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("phone=12", "phone"),
        ("email=nope", "email"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_list_queries_are_422(api: httpx.AsyncClient, query: str, field: str) -> None:
    assert_invalid(await api.get(f"/v1/contacts?{query}"), field)


async def test_cursor_pagination_walks_every_contact_exactly_once(api: httpx.AsyncClient) -> None:
    created = [(await create(api, name=f"c{i}"))["id"] for i in range(7)]
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        r = await api.get(
            "/v1/contacts", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
        )
        body = r.json()
        pages.append([c["id"] for c in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    seen = [i for p in pages for i in p]
    assert seen == sorted(created, reverse=True)  # each once, newest first


async def test_patch_changes_only_the_given_fields_and_merges_attributes(
    api: httpx.AsyncClient,
) -> None:
    contact = await create(
        api,
        name="Ada",
        email="ada@example.com",
        country="GB",
        attributes={"plan": "free", "seats": 1, "tags": ["vip"]},
    )
    r = await api.patch(
        f"/v1/contacts/{contact['id']}",
        json={"name": "Ada L.", "attributes": {"plan": "pro", "seats": None, "trial": False}},
    )
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["name"] == "Ada L."
    assert patched["email"] == "ada@example.com" and patched["country"] == "GB"
    assert patched["attributes"] == {"plan": "pro", "tags": ["vip"], "trial": False}
    assert patched["updated_at"] >= contact["updated_at"]

    r = await api.patch(
        f"/v1/contacts/{contact['id']}", json={"email": None, "phone": "+442071838750"}
    )
    assert (r.json()["email"], r.json()["phone"]) == (None, "+442071838750")
    assert r.json()["attributes"] == patched["attributes"]
    assert (await api.get(f"/v1/contacts/{contact['id']}")).json() == r.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"attributes": None}, "attributes"),
        ({"identities": []}, "identities"),
        ({"timezone": "Nowhere/Special"}, "timezone"),
        ({"phone": "555"}, "phone"),
    ],
)
async def test_bad_patches_are_422(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    contact = await create(api, name="Ada")
    assert_invalid(await api.patch(f"/v1/contacts/{contact['id']}", json=body), field)


async def test_an_empty_patch_is_422(api: httpx.AsyncClient) -> None:
    contact = await create(api, name="Ada")
    r = await api.patch(f"/v1/contacts/{contact['id']}", json={})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


async def test_adding_and_removing_identities(api: httpx.AsyncClient) -> None:
    ada = await create(api, name="Ada")
    bob = await create(api, name="Bob")
    url = f"/v1/contacts/{ada['id']}/identities"

    r = await api.post(url, json={"channel_type": "sms", "address": "+1 415 555 0100"})
    assert r.status_code == 201, r.text
    added = r.json()
    assert (added["contact_id"], added["channel_type"], added["address"]) == (
        ada["id"],
        "sms",
        "+14155550100",
    )

    again = await api.post(url, json={"channel_type": "sms", "address": "+14155550100"})
    assert again.status_code == 200 and again.json()["id"] == added["id"]

    taken = await api.post(
        f"/v1/contacts/{bob['id']}/identities",
        json={"channel_type": "sms", "address": "+14155550100"},
    )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "identity_taken"

    # The same address on another channel type is a different identity.
    r = await api.post(
        f"/v1/contacts/{bob['id']}/identities",
        json={"channel_type": "whatsapp", "address": "+14155550100"},
    )
    assert r.status_code == 201

    assert [i["id"] for i in (await api.get(f"/v1/contacts/{ada['id']}")).json()["identities"]] == [
        added["id"]
    ]

    # An identity is removed through its own contact only.
    r = await api.delete(f"/v1/contacts/{bob['id']}/identities/{added['id']}")
    assert r.status_code == 404
    r = await api.delete(f"{url}/{added['id']}")
    assert r.status_code == 204 and r.content == b""
    assert (await api.get(f"/v1/contacts/{ada['id']}")).json()["identities"] == []
    assert (await api.delete(f"{url}/{added['id']}")).status_code == 404

    # Once freed, the address can go to someone else.
    r = await api.post(
        f"/v1/contacts/{bob['id']}/identities",
        json={"channel_type": "sms", "address": "+14155550100"},
    )
    assert r.status_code == 201


async def test_identity_validation(api: httpx.AsyncClient) -> None:
    ada = await create(api, name="Ada")
    url = f"/v1/contacts/{ada['id']}/identities"
    assert_invalid(await api.post(url, json={"channel_type": "email", "address": "x@"}), "address")
    assert_invalid(
        await api.post(url, json={"channel_type": "fax", "address": "1"}), "channel_type"
    )
    assert_invalid(await api.post(url, json={"channel_type": "sms", "address": "1", "x": 1}), "x")
    r = await api.post(
        "/v1/contacts/ct_nope/identities", json={"channel_type": "inapp", "address": "u"}
    )
    assert r.status_code == 404


async def test_delete_removes_the_contact_its_identities_and_conversations(
    api: httpx.AsyncClient,
) -> None:
    contact = await create(api, identities=[{"channel_type": "inapp", "address": "user-7"}])
    sent = await api.post(
        "/v1/messages",
        json={
            "channel": "inapp",
            "to": {"contact_id": contact["id"]},
            "content": {"type": "text", "text": "hi"},
        },
    )
    assert sent.status_code == 202, sent.text
    conversation_id = sent.json()["messages"][0]["conversation_id"]
    event = await api.post("/v1/events", json={"name": "signed.up", "contact_id": contact["id"]})
    assert event.status_code == 201

    r = await api.delete(f"/v1/contacts/{contact['id']}")
    assert r.status_code == 204 and r.content == b""

    assert (await api.get(f"/v1/contacts/{contact['id']}")).status_code == 404
    assert (await api.get(f"/v1/conversations/{conversation_id}")).status_code == 404
    assert (await api.get(f"/v1/events/{event.json()['id']}")).status_code == 404
    assert (await api.delete(f"/v1/contacts/{contact['id']}")).status_code == 404
    # Its address is free for a new contact.
    await create(api, identities=[{"channel_type": "inapp", "address": "user-7"}])


async def test_another_workspace_sees_none_of_these_contacts(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    contact = await create(
        api,
        external_id="x-1",
        email="ada@example.com",
        identities=[{"channel_type": "inapp", "address": "ada"}],
    )
    url = f"/v1/contacts/{contact['id']}"
    identity_id = contact["identities"][0]["id"]

    for r in [
        await other_api.get(url),
        await other_api.patch(url, json={"name": "Mallory"}),
        await other_api.delete(url),
        await other_api.post(
            f"{url}/identities", json={"channel_type": "sms", "address": "+14155550100"}
        ),
        await other_api.delete(f"{url}/identities/{identity_id}"),
    ]:
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
    for query in ("", "external_id=x-1", "email=ada@example.com"):
        assert (await other_api.get(f"/v1/contacts?{query}")).json() == {
            "data": [],
            "next_cursor": None,
        }
    # Identities are per workspace too: the other workspace may use the same address.
    await create(other_api, identities=[{"channel_type": "inapp", "address": "ada"}])
    assert (await api.get(url)).json() == contact


async def test_contacts_need_a_key(client: httpx.AsyncClient) -> None:
    for r in [await client.get("/v1/contacts"), await client.post("/v1/contacts", json={})]:
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


async def test_unknown_contact_is_404(api: httpx.AsyncClient) -> None:
    for r in [
        await api.get("/v1/contacts/ct_nope"),
        await api.patch("/v1/contacts/ct_nope", json={"name": "x"}),
        await api.delete("/v1/contacts/ct_nope"),
    ]:
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
