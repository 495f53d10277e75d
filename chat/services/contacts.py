"""Contacts: customer profiles and their channel identities.

The normalisers at the top (and the phone and email ones in chat.domain.addresses) turn
what callers type into the one stored form (E.164 phones, lower-case emails, upper-case
countries), so lookups by phone, email or channel address find the same row however
the value was written. They raise ``ValueError``: the REST models call them inside
pydantic validators, so a bad profile field is a 422 naming the field. The service
itself normalises identity addresses again through the channel registry
(``invalid_address``), since their uniqueness depends on it.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chat.bus import Bus, DomainEvent
from chat.db import models as m
from chat.db.engine import Database
from chat.domain.channels import REGISTRY
from chat.domain.errors import Conflict, NotFound, Unprocessable
from chat.domain.ids import new_id
from chat.services.identities import identity_at
from chat.services.paging import page
from chat.services.views import ContactIdentityView, ContactView, Page, contact_view, identity_view

# ISO 3166-1 alpha-2, officially assigned codes.
_ISO_3166 = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRIES = frozenset(_ISO_3166.split())
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")

DELETED = "contact.deleted"  # {"contact_id"}: its open connections are closed

# Profile columns a caller may set; ``attributes`` and identities have their own rules.
PROFILE_FIELDS = (
    "external_id", "name", "email", "phone", "country", "locale", "timezone", "birthdate",
)


def normalise_country(raw: str) -> str:
    code = raw.strip().upper()
    if code not in COUNTRIES:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return code


def normalise_locale(raw: str) -> str:
    """A BCP 47 tag in canonical case: ``pt_br`` -> ``pt-BR``, ``zh-hant`` -> ``zh-Hant``."""
    if not _LOCALE.match(raw):
        raise ValueError("not a BCP 47 language tag such as en or pt-BR")
    first, *rest = re.split(r"[-_]", raw)
    parts = [first.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            parts.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            parts.append(part.title())
        else:
            parts.append(part.lower())
    return "-".join(parts)


def check_timezone(raw: str) -> str:
    """An IANA zone name as the zone database spells it: ``europe/paris`` -> ``Europe/Paris``."""
    zone = _zones().get(raw.lower())
    if zone is None:
        raise ValueError("not an IANA time zone such as Europe/Paris")
    return zone


@functools.cache
def _zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def merge_attributes(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys of ``changes`` replace those of ``current``; a ``None`` removes one."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class ContactFilter:
    email: str | None = None
    phone: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class NewIdentity:
    channel_type: str
    address: str


class Contacts:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def create(
        self,
        workspace_id: str,
        profile: dict[str, Any],
        attributes: dict[str, Any] | None = None,
        identities: Sequence[NewIdentity] = (),
    ) -> ContactView:
        """A new contact; 409 ``contact_exists`` / ``identity_taken`` roll everything back."""
        contact = m.Contact(
            id=new_id("ct"),
            workspace_id=workspace_id,
            attributes=merge_attributes({}, attributes or {}),
            **_profile(profile),
        )
        wanted = list(dict.fromkeys(_normalised(i) for i in identities))
        async with self.db.write() as session:
            await _check_external_id(session, workspace_id, contact.id, contact.external_id)
            session.add(contact)
            await _flush(session, _external_id_taken())
            for ident in wanted:
                await _attach(session, contact, ident)
            return contact_view(contact, await _identities(session, contact.id))

    async def list(
        self, workspace_id: str, flt: ContactFilter, cursor: str | None, limit: int
    ) -> Page[ContactView]:
        q = select(m.Contact).where(m.Contact.workspace_id == workspace_id)
        if flt.email is not None:
            q = q.where(m.Contact.email == flt.email)
        if flt.phone is not None:
            q = q.where(m.Contact.phone == flt.phone)
        if flt.external_id is not None:
            q = q.where(m.Contact.external_id == flt.external_id)
        async with self.db.read() as session:
            # Page over the rows first, then fetch the page's identities in one query.
            result: Page[m.Contact] = await page(session, q, m.Contact.id, cursor, limit, lambda row: row)
            rows = result["data"]
            by_contact: dict[str, list[m.ContactIdentity]] = {c.id: [] for c in rows}
            if rows:
                idents = await session.scalars(
                    select(m.ContactIdentity)
                    .where(m.ContactIdentity.contact_id.in_(by_contact))
                    .order_by(m.ContactIdentity.created_at, m.ContactIdentity.id)
                )
                for ident in idents:
                    by_contact[ident.contact_id].append(ident)
        return {
            "data": [contact_view(c, by_contact[c.id]) for c in rows],
            "next_cursor": result["next_cursor"],
        }

    async def get(self, workspace_id: str, contact_id: str) -> ContactView:
        async with self.db.read() as session:
            contact = await owned(session, workspace_id, contact_id)
            return contact_view(contact, await _identities(session, contact.id))

    async def update(
        self,
        workspace_id: str,
        contact_id: str,
        profile: dict[str, Any],
        attributes: dict[str, Any] | None = None,
    ) -> ContactView:
        """Set the given profile fields (``None`` clears one) and merge ``attributes``."""
        async with self.db.write() as session:
            contact = await owned(session, workspace_id, contact_id)
            if "external_id" in profile:
                await _check_external_id(session, workspace_id, contact.id, profile["external_id"])
            for key, value in _profile(profile).items():
                setattr(contact, key, value)
            if attributes:
                contact.attributes = merge_attributes(contact.attributes or {}, attributes)
            await _flush(session, _external_id_taken())
            return contact_view(contact, await _identities(session, contact.id))

    async def delete(self, workspace_id: str, contact_id: str) -> None:
        """Removes the contact; its identities, conversations and events go with it, and
        its open connections are closed (``contact.deleted``)."""
        async with self.db.write() as session:
            gone = await session.execute(
                delete(m.Contact).where(
                    m.Contact.id == contact_id, m.Contact.workspace_id == workspace_id
                )
            )
            if not gone.rowcount:  # type: ignore[attr-defined]
                raise NotFound("contact not found")
        await self.bus.publish([DomainEvent(DELETED, workspace_id, {"contact_id": contact_id})])

    async def add_identity(
        self, workspace_id: str, contact_id: str, ident: NewIdentity
    ) -> tuple[ContactIdentityView, bool]:
        """The identity and whether it is new; adding one the contact has already is a no-op."""
        ident = _normalised(ident)
        async with self.db.write() as session:
            contact = await owned(session, workspace_id, contact_id)
            row, created = await _attach(session, contact, ident)
            return {**identity_view(row), "contact_id": contact.id}, created

    async def remove_identity(self, workspace_id: str, contact_id: str, identity_id: str) -> None:
        async with self.db.write() as session:
            await owned(session, workspace_id, contact_id)
            gone = await session.execute(
                delete(m.ContactIdentity).where(
                    m.ContactIdentity.id == identity_id,
                    m.ContactIdentity.contact_id == contact_id,
                )
            )
            if not gone.rowcount:  # type: ignore[attr-defined]
                raise NotFound("identity not found")


async def owned(session: AsyncSession, workspace_id: str, contact_id: str) -> m.Contact:
    contact = await session.get(m.Contact, contact_id)
    if contact is None or contact.workspace_id != workspace_id:
        raise NotFound("contact not found")
    return contact


def _profile(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not profile fields: {sorted(unknown)}")
    return values


def _normalised(ident: NewIdentity) -> NewIdentity:
    """The identity with its address in the stored form its channel type's entry gives."""
    try:
        spec = REGISTRY.spec(ident.channel_type)
        return NewIdentity(ident.channel_type, spec.normalise(ident.address))
    except ValueError as exc:
        raise Unprocessable(str(exc), code="invalid_address") from exc


async def _identities(session: AsyncSession, contact_id: str) -> list[m.ContactIdentity]:
    rows = await session.scalars(
        select(m.ContactIdentity)
        .where(m.ContactIdentity.contact_id == contact_id)
        .order_by(m.ContactIdentity.created_at, m.ContactIdentity.id)
    )
    return list(rows)


async def _flush(session: AsyncSession, conflict: Conflict) -> None:
    """Flush; a unique-constraint race that the checks above missed becomes ``conflict``."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise conflict from exc


def _external_id_taken(owner: str | None = None) -> Conflict:
    return Conflict(
        "another contact in this workspace has this external_id",
        code="contact_exists",
        details={"contact_id": owner} if owner else None,
    )


async def _check_external_id(
    session: AsyncSession, workspace_id: str, contact_id: str, external_id: str | None
) -> None:
    if external_id is None:
        return
    owner = await session.scalar(
        select(m.Contact.id).where(
            m.Contact.workspace_id == workspace_id,
            m.Contact.external_id == external_id,
            m.Contact.id != contact_id,
        )
    )
    if owner is not None:
        raise _external_id_taken(owner)


async def _attach(
    session: AsyncSession, contact: m.Contact, ident: NewIdentity
) -> tuple[m.ContactIdentity, bool]:
    """Give ``contact`` the identity; 409 ``identity_taken`` if another contact owns it."""
    existing = await identity_at(session, contact.workspace_id, ident.channel_type, ident.address)
    if existing is not None and existing.contact_id == contact.id:
        return existing, False
    taken = Conflict(
        f"this {ident.channel_type} address belongs to another contact",
        code="identity_taken",
        details={
            "channel_type": ident.channel_type,
            "address": ident.address,
            "contact_id": existing.contact_id if existing else None,
        },
    )
    if existing is not None:
        raise taken
    row = m.ContactIdentity(
        id=new_id("idn"),
        workspace_id=contact.workspace_id,
        contact_id=contact.id,
        channel_type=ident.channel_type,
        address=ident.address,
    )
    session.add(row)
    await _flush(session, taken)
    return row, True
