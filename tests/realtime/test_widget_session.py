"""What ``/client`` adds for the web widget: its settings in ``session`` and the pre-chat
form's ``profile`` event."""

from __future__ import annotations

import pytest

from parley_client import AckError, user_hmac
from tests.conftest import LiveServer
from tests.realtime.conftest import TIMEOUT, CustomerFactory


async def _configure(live: LiveServer, widget: dict[str, object]) -> None:
    channels = (await live.http.get("/v1/channels")).json()["data"]
    inapp = next(c for c in channels if c["type"] == "inapp")
    r = await live.http.patch(f"/v1/channels/{inapp['id']}", json={"config": {"widget": widget}})
    assert r.status_code == 200, r.text


async def test_session_brings_the_widget_settings_with_defaults(
    live_server: LiveServer, customer: CustomerFactory
) -> None:
    visitor = await customer()
    session = await visitor.wait_for("session", timeout=TIMEOUT)
    assert session["widget"] == {
        "color": "#2563EB",
        "title": None,
        "greeting": None,
        "pre_chat_form": {
            "enabled": False,
            "fields": [{"key": "name", "required": False}, {"key": "email", "required": True}],
        },
    }

    await _configure(live_server, {"color": "#0F766E", "greeting": "Hello!", "pre_chat_form": {"enabled": True}})
    later = await customer()
    widget = (await later.wait_for("session", timeout=TIMEOUT))["widget"]
    assert (widget["color"], widget["greeting"], widget["pre_chat_form"]["enabled"]) == ("#0F766E", "Hello!", True)


async def test_the_pre_chat_form_makes_the_visitor_a_contact_with_that_profile(
    live_server: LiveServer, customer: CustomerFactory
) -> None:
    visitor = await customer()
    ack = await visitor.call("profile", {"name": " Ada Lovelace ", "email": "Ada@Example.com"})
    assert ack["profile"] == {"name": "Ada Lovelace", "email": "ada@example.com"}
    contact = (await live_server.http.get(f"/v1/contacts/{visitor.contact_id}")).json()
    assert (contact["name"], contact["email"]) == ("Ada Lovelace", "ada@example.com")

    # A second form fills nothing that is already there.
    again = await visitor.call("profile", {"name": "Somebody Else", "email": "else@example.com"})
    assert again["profile"] == {"name": "Ada Lovelace", "email": "ada@example.com"}

    sent = await visitor.send("Hi, it is Ada")
    conversation = (await live_server.http.get(f"/v1/conversations/{sent['conversation_id']}")).json()
    assert conversation["contact_id"] == visitor.contact_id


async def test_a_form_never_overwrites_what_the_site_verified(
    live_server: LiveServer, customer: CustomerFactory
) -> None:
    mac = user_hmac(live_server.workspace["identity_secret"], "user-7")
    verified = await customer(
        user={"external_id": "user-7", "hmac": mac, "name": "Grace", "email": "grace@example.com"}
    )
    ack = await verified.call("profile", {"name": "Mallory", "email": "mallory@example.com"})
    assert ack["profile"] == {"name": "Grace", "email": "grace@example.com"}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"email": "not an address"}, "invalid_email"),
        ({"name": ""}, "invalid_payload"),
        ({"name": 5}, "invalid_payload"),
        ({"email": "a@b.c" + "x" * 400}, "invalid_payload"),
    ],
)
async def test_a_bad_form_is_refused_and_stores_nothing(
    live_server: LiveServer, customer: CustomerFactory, payload: dict[str, object], code: str
) -> None:
    visitor = await customer()
    with pytest.raises(AckError) as caught:
        await visitor.call("profile", payload)
    assert caught.value.ack["error"]["code"] == code
    r = await live_server.http.get(f"/v1/contacts/{visitor.contact_id}")
    if code == "invalid_payload":
        assert r.status_code == 404  # a malformed event makes no contact
    else:
        assert r.json()["email"] is None
