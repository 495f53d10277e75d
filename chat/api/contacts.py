"""``/v1/contacts``: customer profiles and their channel identities."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from chat.api.common import EMAIL_SHAPE, Email, PageQuery, Patch, Strict
from chat.api.routing import Ctx, Reply, Router
from chat.domain import addresses as a
from chat.domain.addresses import normalise_phone
from chat.domain.channels import REGISTRY, ChannelSpec, ChannelTypeName
from chat.services.contacts import (
    PROFILE_FIELDS,
    ContactFilter,
    NewIdentity,
    check_timezone,
    normalise_country,
    normalise_locale,
)

router = Router("contacts")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Country = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\s*[A-Za-z]{2}\s*$"),
    Field(description="ISO 3166-1 alpha-2, any case"),
]
Locale = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=35,
        pattern=r"^\s*[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*\s*$",
    ),
    Field(description="a BCP 47 language tag, e.g. en or pt-BR"),
]
Phone = Annotated[
    str, Field(min_length=1, max_length=40, pattern=r"\d", description="stored in E.164")
]
Zone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


# The shape each address rule wants (the rule then checks the number, email or token).
_SHAPES = {
    a.PHONE: r"^\s*\+",
    a.WHATSAPP: r"^\s*(whatsapp:)?(\+|\d+\s*$)",
    a.EMAIL: EMAIL_SHAPE,
    a.OPAQUE: r"^\s*\S+\s*$",
    a.WEB_PUSH: r"^\s*\{",
}


def _address_shape(spec: ChannelSpec) -> dict[str, Any]:
    shape = next((s for rule, s in _SHAPES.items() if rule is spec.address), None)
    return {"pattern": shape} if shape else {}


def _address_per_type(schema: dict[str, Any]) -> None:
    schema["allOf"] = [
        {
            "if": {"properties": {"channel_type": {"const": spec.type}}, "required": ["channel_type"]},
            "then": {"properties": {"address": _address_shape(spec)}},
        }
        for spec in REGISTRY
    ]


class IdentityBody(Strict):
    """``sms`` and ``voice`` addresses in E.164 (``+`` and the country code), ``whatsapp``
    the same or a wa_id, ``email`` an address, ``webpush`` the PushSubscription JSON, any
    other type a token without spaces."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_address_per_type)

    channel_type: ChannelTypeName
    address: str = Field(min_length=1, max_length=512)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("channel_type")
        return REGISTRY.spec(kind).normalise(value) if kind else value


class ContactFields(Strict):
    """Profile fields; in a PATCH, ``null`` clears one. ``country`` comes before ``phone``
    so that a national number (``0612345678``) can be read in the given country."""

    external_id: ExternalId | None = None
    name: Name | None = None
    email: Email | None = None
    country: Country | None = None
    phone: Phone | None = None
    locale: Locale | None = None
    timezone: Zone | None = None
    birthdate: date | None = None
    attributes: dict[str, Any] | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return normalise_country(value) if value is not None else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        return normalise_phone(value, info.data.get("country")) if value is not None else None

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return normalise_locale(value) if value is not None else None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return check_timezone(value) if value is not None else None

    @field_validator("birthdate", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if value is not None and not (isinstance(value, str) and len(value) == 10):
            raise ValueError("birthdate must be a YYYY-MM-DD string")
        return value

    @field_validator("birthdate")
    @classmethod
    def _past(cls, value: date | None) -> date | None:
        if value is not None and value > date.today():
            raise ValueError("birthdate is in the future")
        return value

    def profile(self) -> dict[str, Any]:
        """The profile fields the caller gave, ``None`` included."""
        fields = self.model_fields_set - {"attributes", "identities"}
        return {key: getattr(self, key) for key in fields}


class ContactCreate(ContactFields):
    identities: list[IdentityBody] = Field(default_factory=list, max_length=50)


class ContactPatch(Patch, ContactFields):
    # null clears a profile field; attributes are merged (null for a key removes that key)
    nullable = frozenset(PROFILE_FIELDS)


class ContactQuery(PageQuery):
    email: Email | None = None
    phone: Phone | None = None
    external_id: str | None = Field(default=None, max_length=200)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalise_phone(value) if value is not None else None


class IdentityOut(BaseModel):
    id: str
    channel_type: str
    address: str
    created_at: str


class ContactOut(BaseModel):
    id: str
    external_id: str | None
    name: str | None
    email: str | None
    phone: str | None
    country: str | None
    locale: str | None
    timezone: str | None
    birthdate: str | None
    attributes: dict[str, Any]
    identities: list[IdentityOut]
    created_at: str
    updated_at: str


class ContactPage(BaseModel):
    data: list[ContactOut]
    next_cursor: str | None


class ContactIdentityOut(IdentityOut):
    contact_id: str


@router.route(
    "GET", "/v1/contacts", summary="List contacts, newest first", query=ContactQuery,
    response=ContactPage,
)
async def list_contacts(ctx: Ctx) -> Any:
    """Filters match exactly after normalising: ``?phone=+1 415 555 0100`` finds
    ``+14155550100`` and ``?email=`` ignores case."""
    q: ContactQuery = ctx.query
    flt = ContactFilter(email=q.email, phone=q.phone, external_id=q.external_id)
    return await ctx.services.contacts.list(ctx.workspace_id, flt, q.cursor, q.limit)


@router.route(
    "POST", "/v1/contacts", summary="Create a contact, optionally with identities",
    body=ContactCreate, response=ContactOut, status=201, errors=(409,),
)
async def create_contact(ctx: Ctx) -> Any:
    """Phones are stored in E.164 (a number without ``+`` is read in the ``country`` of the
    same body), emails in lower case, ``country`` upper-case. ``attributes`` keys whose value
    is ``null`` are not stored. 409 ``contact_exists`` when another contact has the
    ``external_id``, 409 ``identity_taken`` when another contact owns one of the
    ``identities``; then nothing is created."""
    body: ContactCreate = ctx.body
    identities = [NewIdentity(i.channel_type, i.address) for i in body.identities]
    return Reply(
        await ctx.services.contacts.create(
            ctx.workspace_id, body.profile(), body.attributes, identities
        ),
        201,
    )


@router.route("GET", "/v1/contacts/{contact_id}", summary="Read a contact", response=ContactOut)
async def get_contact(ctx: Ctx) -> Any:
    return await ctx.services.contacts.get(ctx.workspace_id, ctx.path["contact_id"])


@router.route(
    "PATCH", "/v1/contacts/{contact_id}", summary="Change profile fields, merge attributes",
    body=ContactPatch, response=ContactOut, errors=(409,),
)
async def patch_contact(ctx: Ctx) -> Any:
    """Only the fields given change; ``null`` clears a profile field. ``attributes`` is
    merged key by key into the stored ones: a key with a value sets it, a key with ``null``
    removes it, keys not sent stay (so ``{"attributes": {"plan": null}}`` removes only
    ``plan``). Identities change through ``/identities``."""
    body: ContactPatch = ctx.body
    return await ctx.services.contacts.update(
        ctx.workspace_id, ctx.path["contact_id"], body.profile(), body.attributes
    )


@router.route(
    "DELETE", "/v1/contacts/{contact_id}", summary="Delete a contact and everything about it",
    status=204,
)
async def delete_contact(ctx: Ctx) -> Any:
    """Removes the contact with its identities, conversations (and their messages) and
    events. It cannot be undone."""
    await ctx.services.contacts.delete(ctx.workspace_id, ctx.path["contact_id"])
    return Reply(None, 204)


@router.route(
    "POST", "/v1/contacts/{contact_id}/identities",
    summary="Add a channel address or push token to a contact",
    body=IdentityBody, response=ContactIdentityOut, status=201, also=(200,), errors=(409,),
)
async def add_identity(ctx: Ctx) -> Any:
    """``sms``, ``voice`` and ``whatsapp`` addresses are stored in E.164, ``email`` ones in
    lower case, ``webpush`` ones as the browser's PushSubscription JSON (``endpoint``,
    ``keys.p256dh``, ``keys.auth``) written compactly. 201 when added; 200 with the existing identity when the contact has it
    already; 409 ``identity_taken`` when another contact of the workspace owns it."""
    body: IdentityBody = ctx.body
    identity, created = await ctx.services.contacts.add_identity(
        ctx.workspace_id, ctx.path["contact_id"], NewIdentity(body.channel_type, body.address)
    )
    return Reply(identity, 201 if created else 200)


@router.route(
    "DELETE", "/v1/contacts/{contact_id}/identities/{identity_id}",
    summary="Remove an identity from a contact", status=204,
)
async def remove_identity(ctx: Ctx) -> Any:
    await ctx.services.contacts.remove_identity(
        ctx.workspace_id, ctx.path["contact_id"], ctx.path["identity_id"]
    )
    return Reply(None, 204)
