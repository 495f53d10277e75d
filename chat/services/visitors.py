"""End customers of the web widget and the mobile SDKs: who they are, and their devices.

``sign_in`` turns the ``/client`` connect credentials into a contact:

- ``widget_key`` names the workspace; the workspace's in-app channel may restrict
  the page ``Origin`` (``allowed_origins``; an absent Origin is a native app).
- ``user`` ``{external_id, hmac}`` (hmac = hex HMAC-SHA256(identity_secret,
  external_id)) or ``user_token`` (an HS256 JWT signed with identity_secret, ``sub`` =
  external id, ``exp`` required) identify a user: the contact with that external id,
  created on first sight with an ``inapp`` identity whose address is the external id.
- ``session`` (a token from an earlier sign-in) resumes the same contact, identified
  or anonymous; with none of these the visitor is a new anonymous visitor.

An anonymous visitor is not a contact yet: it gets the id its contact will have, and
the contact is created when the visitor first writes (``become_contact``), so visitors
who only look never fill the contacts or the inbox. Its session token says so
(``anon``) and brings back the same id until then, and the contact after.

Any credential that is given and wrong refuses the sign-in.

Widgets written for Rasa (``/rasa``) have no credentials but the widget key: ``widget``
checks the key and the page's origin, and ``rasa_session`` maps the session id the
widget chose to a contact (an ``inapp`` identity ``rasa:<session_id>``) and the
session's latest in-app conversation. Knowing a session id is being that visitor, as
in Rasa itself. As on ``/client``, the contact is created when the session first writes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

import jwt
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chat.db import models as m
from chat.db.engine import Database
from chat.domain.channel_config import widget_settings
from chat.domain.channels import INAPP, REGISTRY
from chat.domain.emails import normalise_email
from chat.domain.errors import Forbidden, NotFound, Unauthorized, Unprocessable
from chat.domain.ids import new_id
from chat.domain.text import NUL_MESSAGE, nul_at
from chat.security import identity_hmac, read_token, sign_token
from chat.services.identities import add_identity, contact_at, contact_for_address, identity_at
from chat.services.views import ConversationView, IdentityView, conversation_view, identity_view

SESSION_KIND = "session"
RASA_ADDRESS_PREFIX = "rasa:"


class ProfileView(TypedDict):
    name: str | None
    email: str | None


@dataclass(frozen=True)
class UserClaim:
    external_id: str
    hmac: str | None = None
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Credentials:
    widget_key: str
    session: str | None = None
    user: UserClaim | None = None
    user_token: str | None = None
    origin: str | None = None  # the page's Origin header; None for native apps


@dataclass(frozen=True)
class Visitor:
    workspace_id: str
    contact_id: str  # for an anonymous visitor, the id its contact will have
    channel_id: str  # the in-app channel new conversations open on
    external_id: str | None
    session: str  # a fresh session token
    conversations: list[ConversationView] = field(default_factory=list)
    known: bool = True  # False: anonymous, no contact yet (``become_contact`` makes one)
    # The web widget's public settings (``chat.domain.channel_config.WidgetSettings``).
    widget: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Resumed:
    contact_id: str
    anonymous: bool  # the token was issued before the visitor became a contact


@dataclass(frozen=True)
class Widget:
    workspace_id: str
    channel_id: str  # the in-app channel new conversations open on


@dataclass(frozen=True)
class RasaSession:
    session_id: str
    # The session's contact; before the session writes, the id its contact will get.
    contact_id: str
    conversation_id: str | None  # the session's latest in-app conversation, if any yet
    known: bool = True  # False: the session has not written yet, so it is no contact


@dataclass(frozen=True)
class _Identity:
    external_id: str
    name: str | None
    email: str | None


class Visitors:
    def __init__(self, db: Database, secret_key: str, session_ttl: int) -> None:
        self.db = db
        self.secret_key = secret_key
        self.session_ttl = session_ttl

    async def widget(self, widget_key: str, origin: str | None) -> Widget:
        """The workspace and in-app channel of ``widget_key``, for a page at ``origin``."""
        ws, channel = await self._widget(widget_key, origin)
        return Widget(ws.id, channel.id)

    async def sign_in(self, creds: Credentials) -> Visitor:
        ws, channel = await self._widget(creds.widget_key, creds.origin)
        resumed = self._session_contact(creds.session, ws.id) if creds.session else None
        identity = _identity(creds, ws.identity_secret)
        if identity is None and (resumed is None or resumed.anonymous):
            visitor = await self._anonymous(ws.id, channel.id, resumed)
        else:
            visitor = await self._identified(
                ws.id, channel.id, identity, resumed.contact_id if resumed else None
            )
        return replace(visitor, widget=widget_settings(channel.config))

    async def fill_profile(
        self, workspace_id: str, contact_id: str, name: str | None, email: str | None
    ) -> ProfileView:
        """What a visitor typed in the widget's pre-chat form: fills the contact's name and
        email where they are empty (a verified profile is never overwritten by a form)."""
        if email is not None:
            try:
                email = normalise_email(email)
            except ValueError as exc:
                raise Unprocessable(str(exc), code="invalid_email") from exc
        name = name.strip() if name is not None else None
        async with self.db.write() as session:
            contact = await session.get(m.Contact, contact_id)
            if contact is None or contact.workspace_id != workspace_id:
                raise NotFound("this contact was deleted", code="contact_deleted")
            if name and not contact.name:
                contact.name = name
            if email and not contact.email:
                contact.email = email
            return {"name": contact.name, "email": contact.email}

    async def _anonymous(
        self, workspace_id: str, channel_id: str, resumed: _Resumed | None
    ) -> Visitor:
        """A visitor without identity: no write, unless it wrote before (then it is a contact)."""
        if resumed is not None:
            async with self.db.read() as session:
                contact = await session.get(m.Contact, resumed.contact_id)
                if contact is not None and contact.workspace_id == workspace_id:
                    conversations = await _conversations(session, workspace_id, contact.id)
                    token = self._token(contact.id, workspace_id, anonymous=False)
                    return Visitor(
                        workspace_id, contact.id, channel_id, contact.external_id, token,
                        conversations,
                    )
        contact_id = resumed.contact_id if resumed is not None else new_id("ct")
        token = self._token(contact_id, workspace_id, anonymous=True)
        return Visitor(workspace_id, contact_id, channel_id, None, token, [], known=False)

    async def become_contact(self, workspace_id: str, contact_id: str) -> None:
        """Makes the anonymous visitor ``contact_id`` a contact (nothing if it is one)."""
        for attempt in (1, 2):  # two tabs of one visitor may write first at once
            try:
                async with self.db.write() as session:
                    if await session.get(m.Contact, contact_id) is None:
                        session.add(
                            m.Contact(id=contact_id, workspace_id=workspace_id, attributes={})
                        )
                return
            except IntegrityError:
                if attempt == 2:
                    raise

    async def exists(self, workspace_id: str, contact_id: str) -> bool:
        """Whether the contact is (still) there."""
        async with self.db.read() as session:
            contact = await session.get(m.Contact, contact_id)
        return contact is not None and contact.workspace_id == workspace_id

    def _token(self, contact_id: str, workspace_id: str, *, anonymous: bool) -> str:
        claims: dict[str, Any] = {"kind": SESSION_KIND, "sub": contact_id, "ws": workspace_id}
        if anonymous:
            claims["anon"] = True
        return sign_token(self.secret_key, claims, self.session_ttl)

    async def _identified(
        self, ws_id: str, channel_id: str, identity: _Identity | None, resumed: str | None
    ) -> Visitor:
        """An identified visitor, or one whose session names a contact."""
        # Most connects are returning visitors: a read finds them without taking the
        # write path (on SQLite, the single writer).
        async with self.db.read() as session:
            contact = await _known_contact(session, ws_id, identity, resumed)
            if contact is not None:
                conversations = await _conversations(session, ws_id, contact.id)
        for attempt in (1, 2):  # a concurrent first sign-in of the same user may win the insert
            if contact is not None:
                break
            try:
                async with self.db.write() as session:
                    contact = await _contact(session, ws_id, identity, resumed)
                    conversations = await _conversations(session, ws_id, contact.id)
            except IntegrityError:
                if attempt == 2:
                    raise
        assert contact is not None
        token = self._token(contact.id, ws_id, anonymous=False)
        return Visitor(ws_id, contact.id, channel_id, contact.external_id, token, conversations)

    async def rasa_session(
        self, workspace_id: str, session_id: str, *, create: bool = False
    ) -> RasaSession:
        """The contact behind a Rasa widget's session id (created if ``create``: when the
        session writes) and the session's latest in-app conversation."""
        address = RASA_ADDRESS_PREFIX + session_id
        async with self.db.read() as session:
            contact = await contact_at(session, workspace_id, INAPP, address)
            if contact is not None:
                latest = await _latest_conversation(session, workspace_id, contact.id)
                return RasaSession(session_id, contact.id, latest)
        # Every socket of the session, in any process, must agree on the id before the
        # contact exists (its sockets share the contact's room): so it is derived.
        promised = rasa_contact_id(workspace_id, session_id)
        if not create:
            return RasaSession(session_id, promised, None, known=False)
        for attempt in (1, 2):  # two sockets may bring a new session id at once
            try:
                async with self.db.write() as session:
                    contact = await contact_at(
                        session, workspace_id, INAPP, address
                    )
                    if contact is None:
                        contact = await _rasa_contact(session, workspace_id, promised, address)
                    latest = await _latest_conversation(session, workspace_id, contact.id)
                    return RasaSession(session_id, contact.id, latest)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def register_push(
        self, workspace_id: str, contact_id: str, channel_type: str, token: str
    ) -> IdentityView:
        """Store a device token (or a browser's push subscription) as the contact's
        identity, taking it from any other contact."""
        if channel_type not in REGISTRY.push_types:
            raise Unprocessable(
                f"channel_type must be one of {', '.join(sorted(REGISTRY.push_types))}",
                code="invalid_channel_type",
            )
        try:
            token = REGISTRY.spec(channel_type).normalise(token)
        except ValueError as exc:
            raise Unprocessable(str(exc), code="invalid_address") from exc
        async with self.db.write() as session:
            ident = await identity_at(session, workspace_id, channel_type, token)
            if ident is None:
                ident = m.ContactIdentity(
                    id=new_id("idn"),
                    workspace_id=workspace_id,
                    contact_id=contact_id,
                    channel_type=channel_type,
                    address=token,
                )
                session.add(ident)
            else:
                ident.contact_id = contact_id  # the device changed hands (log out / log in)
            await session.flush()
            return identity_view(ident)

    async def _widget(self, widget_key: str, origin: str | None) -> tuple[m.Workspace, m.Channel]:
        async with self.db.read() as session:
            ws = await session.scalar(
                select(m.Workspace).where(m.Workspace.widget_key == widget_key)
            )
            if ws is None:
                raise Unauthorized("unknown widget_key", code="invalid_widget_key")
            channel = await _inapp_channel(session, ws.id)
        if not origin_allowed(origin, (channel.config or {}).get("allowed_origins", ["*"])):
            raise Forbidden("this page's origin may not use this widget", code="origin_not_allowed")
        return ws, channel

    def _session_contact(self, token: str, workspace_id: str) -> _Resumed:
        claims = read_token(self.secret_key, token, SESSION_KIND)
        if claims is None or claims.get("ws") != workspace_id or not claims.get("sub"):
            raise Unauthorized("the session is invalid or expired", code="invalid_session")
        return _Resumed(str(claims["sub"]), claims.get("anon") is True)


def rasa_contact_id(workspace_id: str, session_id: str) -> str:
    """The id a Rasa session's contact gets: like ``new_id``'s ids, but from the session."""
    digest = hashlib.sha256(f"{workspace_id}\n{session_id}".encode()).hexdigest()
    return f"ct_{digest[:24]}"


async def _rasa_contact(
    session: AsyncSession, workspace_id: str, contact_id: str, address: str
) -> m.Contact:
    contact = await session.get(m.Contact, contact_id)
    if contact is None:
        contact = m.Contact(id=contact_id, workspace_id=workspace_id, attributes={})
        session.add(contact)
        await session.flush()
    await add_identity(session, workspace_id, contact.id, INAPP, address)
    return contact


def origin_allowed(origin: str | None, allowed: Any) -> bool:
    """``allowed`` holds exact origins, ``*``, or patterns such as ``https://*.example.com``."""
    if origin is None:
        return True  # native apps send no Origin
    if isinstance(allowed, str):
        allowed = [allowed]
    if not isinstance(allowed, list):
        return False
    origin = origin.strip().rstrip("/").lower()
    for pattern in allowed:
        if not isinstance(pattern, str):
            continue
        pattern = pattern.strip().rstrip("/").lower()
        if (
            pattern == "*"
            or pattern == origin
            or ("*" in pattern and fnmatch.fnmatchcase(origin, pattern))
        ):
            return True
    return False


def _identity(creds: Credentials, identity_secret: str) -> _Identity | None:
    from_user = from_token = None
    if creds.user is not None:
        user = creds.user
        if not user.hmac:
            raise Unauthorized("user needs an hmac", code="hmac_required")
        expected = identity_hmac(identity_secret, user.external_id)
        if not hmac.compare_digest(expected, user.hmac.strip().lower()):
            raise Unauthorized("the user hmac does not match", code="invalid_hmac")
        from_user = _Identity(user.external_id, _text(user.name), _email(user.email))
    if creds.user_token is not None:
        try:
            claims = jwt.decode(
                creds.user_token,
                identity_secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"bad user_token: {exc}", code="invalid_user_token") from exc
        if nul_at(claims) is not None:
            raise Unauthorized(f"bad user_token: {NUL_MESSAGE}", code="invalid_user_token")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 200:
            raise Unauthorized(
                "bad user_token: sub must be the external id", code="invalid_user_token"
            )
        from_token = _Identity(sub, _text(claims.get("name")), _email(claims.get("email")))
    if from_user and from_token and from_user.external_id != from_token.external_id:
        raise Unauthorized("user and user_token name different users", code="identity_mismatch")
    identity = from_user or from_token
    if identity and identity.external_id.startswith(RASA_ADDRESS_PREFIX):
        # Rasa sessions own these in-app addresses; a user must not become one of them.
        raise Unauthorized(
            f"external ids starting with {RASA_ADDRESS_PREFIX!r} are reserved", code="reserved_external_id"
        )
    return identity


async def _inapp_channel(session: AsyncSession, workspace_id: str) -> m.Channel:
    channel = await session.scalar(
        select(m.Channel)
        .where(m.Channel.workspace_id == workspace_id, m.Channel.type == INAPP)
        .order_by(m.Channel.id)
        .limit(1)
    )
    if channel is None:
        raise NotFound("this workspace has no in-app channel", code="channel_not_configured")
    return channel


async def _known_contact(
    session: AsyncSession, workspace_id: str, identity: _Identity | None, resumed: str | None
) -> m.Contact | None:
    """The contact if it exists and needs no change; None sends the caller to ``_contact``."""
    if identity is not None:
        contact = await contact_at(
            session, workspace_id, INAPP, identity.external_id
        )
        if contact is None:
            return None
        if (identity.name and not contact.name) or (identity.email and not contact.email):
            return None  # the profile gets filled in
        return contact
    if resumed is not None:
        known = await session.get(m.Contact, resumed)
        if known is None or known.workspace_id != workspace_id:
            raise Unauthorized("the session's contact no longer exists", code="invalid_session")
        return known
    return None


async def _contact(
    session: AsyncSession, workspace_id: str, identity: _Identity | None, resumed: str | None
) -> m.Contact:
    if identity is not None:  # a verified identity wins over a stored session
        contact = await contact_for_address(
            session,
            workspace_id,
            INAPP,
            identity.external_id,
            name=identity.name,
            email=identity.email,
            external_id=identity.external_id,
        )
        if identity.name and not contact.name:
            contact.name = identity.name
        if identity.email and not contact.email:
            contact.email = identity.email
        return contact
    assert resumed is not None  # anonymous visitors are no contacts (``Visitors._anonymous``)
    known = await session.get(m.Contact, resumed)
    if known is None or known.workspace_id != workspace_id:
        raise Unauthorized("the session's contact no longer exists", code="invalid_session")
    return known


def _inapp_conversations(workspace_id: str, contact_id: str) -> Select[Any]:
    """The contact's in-app conversations, newest first."""
    return (
        select(m.Conversation)
        .where(
            m.Conversation.workspace_id == workspace_id,
            m.Conversation.contact_id == contact_id,
            m.Conversation.channel_type == INAPP,
        )
        .order_by(m.Conversation.id.desc())
    )


async def _latest_conversation(
    session: AsyncSession, workspace_id: str, contact_id: str
) -> str | None:
    return await session.scalar(
        _inapp_conversations(workspace_id, contact_id).with_only_columns(m.Conversation.id).limit(1)
    )


async def _conversations(
    session: AsyncSession, workspace_id: str, contact_id: str
) -> list[ConversationView]:
    rows = await session.scalars(_inapp_conversations(workspace_id, contact_id).limit(50))
    return [conversation_view(c) for c in rows]


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) and value else None


def _email(value: Any) -> str | None:
    # Unverified profile data: kept only when it looks like an address.
    text = _text(value)
    return text.strip().lower() if text and "@" in text and " " not in text.strip() else None
