"""The countries SMS and voice may go to: the default list, and a number's country."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import geocoder

from chat.domain.countries import (
    DEFAULT_SEND_COUNTRIES,
    KNOWN_COUNTRIES,
    UnknownCountries,
    country_list,
    country_of,
)

# The list at the end of issue 8, as written there.
ISSUE_8 = (
    "Austria, Belgium, Bulgaria, Croatia, Cyprus, Czech Republic, Denmark, Egypt, Estonia, "
    "Finland, France, Germany, Georgia, Greece, Hungary, Iceland, Ireland, Israel, Italy, "
    "Latvia, Liechtenstein, Lithuania, Luxembourg, Malta, Netherlands, Norway, Poland, "
    "Portugal, Qatar, Romania, Saudi Arabia, Slovakia, Slovenia, South Africa, Spain, Sweden, "
    "Switzerland, United Arab Emirates, United Kingdom; Argentina, Aruba, Bahamas, Belize, "
    "Bermuda, Canada, Cayman Islands, Colombia, Curaçao, Dominican Republic, Jamaica, "
    "Puerto Rico, Trinidad and Tobago, United States; Australia, Hong Kong, Japan, "
    "New Zealand, Taiwan"
)


def english_name(code: str) -> str:
    example = phonenumbers.example_number(code)
    assert example is not None, code
    name: str = geocoder.country_name_for_number(example, "en")
    return name


def test_the_default_list_is_the_issues_list_country_for_country() -> None:
    names = {n.strip() for part in ISSUE_8.split(";") for n in part.split(",")}
    assert len(names) == len(DEFAULT_SEND_COUNTRIES) == 58
    assert DEFAULT_SEND_COUNTRIES <= KNOWN_COUNTRIES
    assert {english_name(code) for code in DEFAULT_SEND_COUNTRIES} == names


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("+14155550100", "US"),  # San Francisco
        ("+14165550100", "CA"),  # Toronto: +1, but not the US
        ("+17875550100", "PR"),  # Puerto Rico
        ("+12425550100", "BS"),  # the Bahamas
        ("+13405550100", "VI"),  # US Virgin Islands: not on the default list
        ("+447400123456", "GB"),
        ("+447781123456", "GG"),  # Guernsey: +44, but not the United Kingdom
        ("+5511912345678", "BR"),
        ("+12975550100", None),  # no such area code: no country
    ],
)
def test_a_number_belongs_to_the_region_of_its_digits(number: str, country: str | None) -> None:
    assert country_of(number) == country


def test_only_us_is_allowed_of_the_plus_one_numbers_outside_the_list() -> None:
    assert {"US", "CA", "PR"} <= DEFAULT_SEND_COUNTRIES
    assert "VI" not in DEFAULT_SEND_COUNTRIES and "GG" not in DEFAULT_SEND_COUNTRIES


def test_a_list_is_upper_cased_sorted_and_unique() -> None:
    assert country_list(["gb", "US", "us ", "De"]) == ["DE", "GB", "US"]
    assert country_list([]) == []


def test_unknown_codes_are_all_named() -> None:
    with pytest.raises(UnknownCountries) as refused:
        country_list(["US", "XX", "UK", "001"])
    assert refused.value.codes == ["001", "UK", "XX"]  # the UK's code is GB
