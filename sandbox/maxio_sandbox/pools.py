"""Word pools and small formatting helpers for seeded records."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

FIRST_NAMES = (
    "Amelia", "Ben", "Carla", "Dmitri", "Elena", "Farah", "Gustavo", "Hana", "Ivan",
    "Jasmine", "Kofi", "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa",
    "Sven", "Tamara", "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Meg", "Kayla",
    "Nick", "Don", "Charlene", "José", "Zoë", "Björn", "Chloé", "Łukasz",
)  # fmt: skip
LAST_NAMES = (
    "Anderson", "Baptiste", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Haddad",
    "Ivanova", "Jensen", "Kowalski", "Lopez", "Müller", "Nakamura", "O'Brien", "Petrov",
    "Quinn", "Rossi", "Schmidt", "Tanaka", "Usman", "Varga", "Walsh", "Xu", "Yilmaz",
    "Zhang", "Example", "Tester",
)  # fmt: skip
ORGANIZATIONS = (
    "", "", "", "Acme Inc.", "Globex", "Initech", "Umbrella Labs", "Hooli", "Stark Supply",
    "Wayne Logistics", "Pied Piper", "Vandelay Industries", "Soylent Co", "Tyrell GmbH",
)  # fmt: skip
# (city, state code, state name, zip, country code, country name)
PLACES = (
    ("Boston", "MA", "Massachusetts", "02120", "US", "United States"),
    ("Boulder", "CO", "Colorado", "80302", "US", "United States"),
    ("Austin", "TX", "Texas", "73301", "US", "United States"),
    ("Seattle", "WA", "Washington", "98101", "US", "United States"),
    ("New York", "NY", "New York", "10001", "US", "United States"),
    ("Toronto", "ON", "Ontario", "M5H 2N2", "CA", "Canada"),
    ("London", "LND", "London, City of", "EC1A 1BB", "GB", "United Kingdom"),
    ("Berlin", "BE", "Berlin", "10115", "DE", "Germany"),
    ("Sydney", "NSW", "New South Wales", "2000", "AU", "Australia"),
)
STREETS = (
    "Main St", "Elm Street", "Anywhere Street", "15th St", "Harbor Way", "Oak Avenue",
    "Maple Drive", "Cedar Lane", "Market Street", "I Love Cats Way",
)  # fmt: skip
FAMILY_NAMES = ("Billing Plans", "Add-ons", "Enterprise Plans", "Services", "Legacy Plans")
PRODUCT_NAMES = (
    "Basic", "Pro", "Business", "Enterprise", "Starter", "Team", "Premium", "Trial End - Free",
    "Trial and setup fee", "Ultimate",
)  # fmt: skip
COUPON_CODES = ("WELCOME10", "SPRING20", "PARTNER15", "BLACKFRIDAY", "LOYAL5")
CARD_TYPES = ("visa", "master", "american_express", "discover")
VAULTS = ("bogus", "braintree_blue", "stripe_connect", "authorizenet")
CANCEL_MESSAGES = (
    "Too expensive", "Switching to a competitor", "No longer needed", None, None,
)  # fmt: skip
LOCALES = (None, None, None, "en", "fr", "de", "es")

UID_ALPHABET = "23456789bcdfghjkmnpqrstvwxyz"  # ascending ASCII: uid order == number order
UID_WIDTH = 13
UID_SPACE: int = len(UID_ALPHABET) ** UID_WIDTH  # 28**13 < 2**63: fits an int64 column


def encode_uid(prefix: str, number: int) -> str:
    """A Maxio-looking uid such as inv_8htcd29wcq3q6, from a number below UID_SPACE."""
    chars = []
    for _ in range(UID_WIDTH):
        number, digit = divmod(number, len(UID_ALPHABET))
        chars.append(UID_ALPHABET[digit])
    return prefix + "".join(reversed(chars))


def scramble(number: int) -> int:
    """A bijection on [0, UID_SPACE): uids unique per number, yet unordered in time."""
    # 2**61 - 1 is prime, hence coprime with 28**13 = 2**26 * 7**13.
    return (number * (2**61 - 1) + 0x5EED) % UID_SPACE


def money(cents: int) -> str:
    """Cents as Maxio's decimal string, e.g. 1250 -> "12.50"."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def slug(text: str) -> str:
    """A handle: lower case, dashes for anything else."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def nth_name(names: Sequence[str], row: int) -> str:
    """The row-th name of a pool, numbered once the pool runs out."""
    base = names[row % len(names)]
    return base if row < len(names) else f"{base} {row // len(names) + 1}"
