"""One email rule for the REST API and the CLI (tests/test_cli.py runs the same addresses)."""

from __future__ import annotations

import httpx
import pytest

from chat.domain.emails import normalise_email
from tests.test_cli import ACCEPTED_EMAILS, REFUSED_EMAILS


async def test_agents_and_contacts_accept_the_docs_addresses(api: httpx.AsyncClient) -> None:
    for i, email in enumerate(ACCEPTED_EMAILS):
        agent = await api.post("/v1/agents", json={"email": email, "name": "Ann"})
        assert agent.status_code == 201, agent.text
        contact = await api.post("/v1/contacts", json={"email": email, "external_id": f"c{i}"})
        assert contact.status_code == 201, contact.text


async def test_agents_refuse_malformed_addresses(api: httpx.AsyncClient) -> None:
    for email in REFUSED_EMAILS:
        resp = await api.post("/v1/agents", json={"email": email, "name": "Ann"})
        assert resp.status_code == 422, email
        assert resp.json()["error"]["details"][0]["loc"] == ["email"]


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("Ann@Acme.TEST", "ann@acme.test"), (" demo@parley.local ", "demo@parley.local"),
     ("Ada@Example.COM", "ada@example.com"), ("a@acme.com.test", "a@acme.com.test")],
)
def test_addresses_are_stored_lower_cased(raw: str, normalised: str) -> None:
    assert normalise_email(raw) == normalised
