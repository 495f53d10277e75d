"""Where SMS and voice may go: the default allow-list, and the country of a number.

Countries are ISO 3166-1 alpha-2 codes as ``phonenumbers`` names regions: a number's
country is the region its digits belong to, so ``+1 416 ...`` is ``CA``, ``+1 787 ...``
is ``PR`` and ``+44 1481 ...`` (Guernsey) is ``GG``, each a separate entry (allowing
``US`` does not allow Canada, nor ``GB`` the Channel Islands).

``DEFAULT_SEND_COUNTRIES`` is the one place the default list lives; a workspace that
has not set its own list (``PUT /v1/workspace/countries``) uses it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Final

import phonenumbers

# Europe, the Middle East and Africa; the Americas; Asia-Pacific.
DEFAULT_SEND_COUNTRIES: Final = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EG", "EE", "FI", "FR", "DE", "GE",
        "GR", "HU", "IS", "IE", "IL", "IT", "LV", "LI", "LT", "LU", "MT", "NL", "NO",
        "PL", "PT", "QA", "RO", "SA", "SK", "SI", "ZA", "ES", "SE", "CH", "AE", "GB",
        "AR", "AW", "BS", "BZ", "BM", "CA", "KY", "CO", "CW", "DO", "JM", "PR", "TT",
        "US",
        "AU", "HK", "JP", "NZ", "TW",
    }
)

# Every country a phone number can belong to (phonenumbers' regions; "001", the
# non-geographic numbers, is not a country).
KNOWN_COUNTRIES: Final = frozenset(r for r in phonenumbers.SUPPORTED_REGIONS if r.isalpha())


class UnknownCountries(ValueError):
    def __init__(self, codes: list[str]) -> None:
        super().__init__("unknown country codes: " + ", ".join(codes))
        self.codes = codes


def country_list(codes: Iterable[str]) -> list[str]:
    """``codes`` upper-cased, de-duplicated and sorted; ``UnknownCountries`` naming every
    code that is not an ISO 3166-1 alpha-2 country with phone numbers."""
    wanted = {c.strip().upper() for c in codes}
    unknown = sorted(c for c in wanted if c not in KNOWN_COUNTRIES)
    if unknown:
        raise UnknownCountries(unknown)
    return sorted(wanted)


@functools.lru_cache(maxsize=65_536)
def country_of(e164: str) -> str | None:
    """The country of a phone number in E.164 form; None when it belongs to none."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    return region if region in KNOWN_COUNTRIES else None
