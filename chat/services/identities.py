"""Finding a contact by one of its channel addresses, or creating it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chat.db import models as m
from chat.domain.channels import REGISTRY
from chat.domain.ids import new_id


def _owning(workspace_id: str, channel_type: str, address: str) -> tuple[Any, ...]:
    return (
        m.ContactIdentity.workspace_id == workspace_id,
        m.ContactIdentity.channel_type == channel_type,
        m.ContactIdentity.address == address,
    )


async def identity_at(
    session: AsyncSession, workspace_id: str, channel_type: str, address: str
) -> m.ContactIdentity | None:
    """The identity for ``address`` on ``channel_type``, whoever owns it."""
    return await session.scalar(
        select(m.ContactIdentity).where(*_owning(workspace_id, channel_type, address))
    )


async def contact_at(
    session: AsyncSession, workspace_id: str, channel_type: str, address: str
) -> m.Contact | None:
    """The contact that owns ``address`` on ``channel_type``, if any."""
    return await session.scalar(
        select(m.Contact)
        .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Contact.id)
        .where(*_owning(workspace_id, channel_type, address))
    )


async def contact_for_address(
    session: AsyncSession,
    workspace_id: str,
    channel_type: str,
    address: str,
    *,
    name: str | None = None,
    email: str | None = None,
    external_id: str | None = None,
) -> m.Contact:
    """The contact that owns ``address`` (already normalised) on ``channel_type``; a new one
    if nobody does, whose phone or email is the address when the channel type's address
    is one (E.164 for sms, voice and whatsapp)."""
    contact = await contact_at(session, workspace_id, channel_type, address)
    if contact is not None:
        return contact
    if external_id is not None:
        contact = await session.scalar(
            select(m.Contact).where(
                m.Contact.workspace_id == workspace_id, m.Contact.external_id == external_id
            )
        )
    if contact is None:
        contact = m.Contact(
            id=new_id("ct"),
            workspace_id=workspace_id,
            external_id=external_id,
            name=name,
            email=email,
            attributes={},
        )
        profile_field = REGISTRY.spec(channel_type).address.profile_field
        if profile_field == "phone":
            contact.phone = address
        elif profile_field == "email" and email is None:
            contact.email = address
        session.add(contact)
        await session.flush()
    await add_identity(session, workspace_id, contact.id, channel_type, address)
    return contact


async def add_identity(
    session: AsyncSession, workspace_id: str, contact_id: str, channel_type: str, address: str
) -> None:
    """Within a transaction: ``address`` on ``channel_type`` becomes the contact's."""
    session.add(
        m.ContactIdentity(
            id=new_id("idn"),
            workspace_id=workspace_id,
            contact_id=contact_id,
            channel_type=channel_type,
            address=address,
        )
    )
    await session.flush()
