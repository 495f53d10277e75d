"""The one email rule, for agents and contacts, over REST and in the CLI."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

# Reserved names (RFC 2606, 6761, 6762) that email-validator refuses as undeliverable, but
# that test setups and internal networks use: ``ann@acme.test``, ``demo@parley.local``.
SPECIAL_USE_TLDS = frozenset({"test", "example", "invalid", "localhost", "local"})


def normalise_email(raw: str) -> str:
    """The one email rule (REST and CLI): RFC 5322 syntax as email-validator checks it, a
    domain with a dot and a top-level name, no DNS lookup; reserved test and local names
    are accepted. Returns the address lower-cased."""
    address = raw.strip()
    head, dot, tld = address.rpartition(".")
    special = bool(dot) and "@" in head and tld.lower() in SPECIAL_USE_TLDS
    try:
        # A reserved name is checked as if it were an ordinary one, then given back.
        info = validate_email(f"{head}.com" if special else address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc
    normalized = info.normalized.lower()
    return f"{normalized.removesuffix('.com')}.{tld.lower()}" if special else normalized
