"""What a user sees when a setting is refused, and the edge cases of the override."""

from __future__ import annotations

import pytest

from tap_maxio.urls import SettingError, resolve

SERVERS = "'production', 'ebb', 'Production (US)', 'Production (EU)', 'EBB (US)', 'EBB (EU)'"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"subdomain": "acme.evil"},
            "Setting 'subdomain': 'acme.evil' is not a Maxio site subdomain; use the part "
            "before '.chargify.com' (letters, digits and '-'), e.g. 'acme'",
        ),
        (
            {"server": "Sandbox"},
            f"Setting 'server': 'Sandbox' is not one of {SERVERS}",
        ),
        (
            {"environment": "Mars"},
            "Setting 'environment': 'Mars' is not 'us' or 'eu'",
        ),
        (
            {"base_url": "ftp://127.0.0.1"},
            "Setting 'base_url': 'ftp://127.0.0.1' is not a plain URL like "
            "https://proxy.example.com",
        ),
        (
            {"base_url": "http://proxy.example.com"},
            "Setting 'base_url': must use https unless its host is loopback",
        ),
        (
            {"server": "Production (EU)", "environment": "us"},
            "Setting 'server': 'Production (EU)' is a EU server but environment is 'us'",
        ),
        (
            {"subdomain": "acme.ebilling.maxio.com", "environment": "us"},
            "Setting 'environment': is 'us' but subdomain 'acme.ebilling.maxio.com' is a EU "
            "site address; set environment to 'eu'",
        ),
    ],
)
def test_a_refusal_quotes_the_value_and_says_what_to_set(settings, message):
    with pytest.raises(SettingError) as refused:
        resolve({"subdomain": "acme", **settings})
    assert str(refused.value) == message


def test_empty_server_and_environment_mean_unset():
    """A setting set to nothing, as an empty environment variable sets it, is unset."""
    conn = resolve({"subdomain": "acme", "server": "", "environment": ""})
    assert (conn.environment, conn.server, conn.read_url) == (
        "us",
        "production",
        "https://acme.chargify.com",
    )


def test_ipv6_loopback_without_a_port():
    assert resolve({"subdomain": "acme", "base_url": "http://[::1]"}).read_url == "http://[::1]"


@pytest.mark.parametrize("base_url", ["https:///maxio", "https://user@proxy.example.com"])
def test_a_base_url_without_a_host_or_with_a_user_is_refused(base_url):
    with pytest.raises(SettingError, match="^Setting 'base_url'"):
        resolve({"subdomain": "acme", "base_url": base_url})
