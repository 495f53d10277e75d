"""The send-time rules a channel's capabilities impose, as pure decisions.

| rule | applies to | refusal |
| --- | --- | --- |
| country allow-list | types with ``country_restricted`` (sms, voice) | ``country_not_allowed`` |
| message tag | a tag the channel type does not take | ``message_tag_not_supported`` |
| customer-service window | types with ``window_hours`` (whatsapp, messenger, wechat) | ``template_required`` |

The window: a free-form message may go out within ``window_hours`` of the customer's
last inbound message in the conversation. Outside it (or before the customer ever
wrote) only a ``template`` goes, on types that have templates; on Messenger a message
tag stretches the window (``HUMAN_AGENT``: 7 days) or lifts it (the update tags).

The write path (``chat.services.message_store``) asks these for every outbound message
that is not a private note, before anything of it is written.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chat.domain.channels import Capabilities
from chat.domain.countries import country_of


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str
    detail: dict[str, Any]


def country_refusal(address: str, allowed: Collection[str]) -> Refusal | None:
    """Why ``address`` (E.164) may not be sent to, or None when its country is allowed."""
    country = country_of(address)
    if country is not None and country in allowed:
        return None
    where = f"country {country}" if country else "no known country"
    return Refusal(
        "country_not_allowed",
        f"{address} is in {where}, which is not on this workspace's list of countries "
        "for SMS and voice (GET /v1/workspace/countries)",
        {"code": "country_not_allowed", "address": address, "country": country},
    )


def tag_refusal(channel_type: str, caps: Capabilities, tag: str | None) -> Refusal | None:
    if tag is None or tag in caps.message_tags:
        return None
    takes = ", ".join(sorted(caps.message_tags)) or "none"
    return Refusal(
        "message_tag_not_supported",
        f"'{channel_type}' channels do not take the message tag {tag} (they take: {takes})",
        {"code": "message_tag_not_supported", "message_tag": tag, "channel_type": channel_type},
    )


def window_refusal(
    channel_type: str,
    caps: Capabilities,
    content: dict[str, Any],
    tag: str | None,
    last_inbound_at: datetime | None,
    now: datetime,
) -> Refusal | None:
    """Why a free-form message may not go out now, or None when it may."""
    if caps.window_hours is None:
        return None
    if caps.templates and content.get("type") == "template":
        return None
    hours: int | None = caps.window_hours
    if tag is not None and tag in caps.message_tags:
        hours = caps.message_tags[tag]
        if hours is None:
            return None
    assert hours is not None
    if last_inbound_at is not None and now - last_inbound_at <= timedelta(hours=hours):
        return None
    ways = []
    if caps.templates:
        ways.append("send a template message")
    if caps.message_tags:
        ways.append("give a message_tag (" + ", ".join(sorted(caps.message_tags)) + ")")
    at = last_inbound_at.isoformat().replace("+00:00", "Z") if last_inbound_at else None
    since = (
        f"the customer's last message was at {at}"
        if last_inbound_at
        else "the customer has not written in this conversation"
    )
    return Refusal(
        "template_required",
        f"outside the {hours}-hour window of '{channel_type}' ({since}): "
        + (" or ".join(ways) or "wait for the customer to write"),
        {
            "code": "template_required",
            "window_hours": hours,
            "last_inbound_at": at,
            "message_tags": sorted(caps.message_tags),
        },
    )
