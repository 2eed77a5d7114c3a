"""The URL resolver: the four server variants, the override, and what it refuses."""

from __future__ import annotations

import pytest

from tap_maxio.urls import SettingError, resolve


@pytest.mark.parametrize(
    ("environment", "server", "read_url", "server_url"),
    [
        ("us", "production", "https://acme.chargify.com", "https://acme.chargify.com"),
        ("eu", "production", "https://acme.ebilling.maxio.com", "https://acme.ebilling.maxio.com"),
        ("us", "ebb", "https://acme.chargify.com", "https://events.chargify.com/acme"),
        ("eu", "ebb", "https://acme.ebilling.maxio.com", "https://events.chargify.com/acme"),
    ],
)
def test_each_server_variant(environment, server, read_url, server_url):
    conn = resolve({"subdomain": "acme", "environment": environment, "server": server})
    assert (conn.read_url, conn.server_url) == (read_url, server_url)
    assert (conn.environment, conn.server) == (environment, server)


@pytest.mark.parametrize(
    ("label", "environment", "read_url", "server"),
    [
        ("Production (US)", "us", "https://acme.chargify.com", "production"),
        ("Production (EU)", "eu", "https://acme.ebilling.maxio.com", "production"),
        ("EBB (US)", "us", "https://acme.chargify.com", "ebb"),
        ("EBB (EU)", "eu", "https://acme.ebilling.maxio.com", "ebb"),
    ],
)
def test_form_labels_set_server_and_region(label, environment, read_url, server):
    conn = resolve({"subdomain": "acme", "server": label})
    assert (conn.environment, conn.server, conn.read_url) == (environment, server, read_url)


def test_defaults_are_us_production():
    conn = resolve({"subdomain": "acme"})
    assert (conn.environment, conn.server, conn.read_url) == (
        "us",
        "production",
        "https://acme.chargify.com",
    )


@pytest.mark.parametrize("value", ["US", " eu ", "Eu"])
def test_environment_is_case_insensitive(value):
    assert resolve({"subdomain": "acme", "environment": value}).environment == value.strip().lower()


def test_label_contradicting_environment_is_refused():
    with pytest.raises(SettingError, match="'server'.*EU server but environment is 'us'"):
        resolve({"subdomain": "acme", "server": "Production (EU)", "environment": "us"})


@pytest.mark.parametrize(
    ("pasted", "environment"),
    [
        ("https://acme.chargify.com", "us"),
        ("acme.chargify.com", "us"),
        ("https://acme.chargify.com/", "us"),
        ("ACME.chargify.com", "us"),
        ("acme.ebilling.maxio.com", "eu"),
        ("https://acme.ebilling.maxio.com", "eu"),
        ("https://events.chargify.com/acme", "us"),
        ("  acme\n", "us"),
        ("my-site-2", "us"),
    ],
)
def test_pasted_addresses_reduce_to_the_subdomain(pasted, environment):
    conn = resolve({"subdomain": pasted})
    assert conn.subdomain in {"acme", "my-site-2"}
    assert conn.environment == environment
    assert conn.read_url.startswith(f"https://{conn.subdomain}.")


def test_pasted_eu_address_with_us_environment_is_refused():
    with pytest.raises(SettingError, match="'environment'.*set environment to 'eu'"):
        resolve({"subdomain": "acme.ebilling.maxio.com", "environment": "us"})


@pytest.mark.parametrize(
    "value",
    [
        "evil.com/",
        "a@evil.com",
        "acme@evil.com",
        "acme.chargify.com.evil.com",
        "acme.chargify.com@evil.com",
        "acme#",
        "acme#.evil.com",
        "acme:443",
        "acme.chargify.com:443",
        "ac me",
        "acme\tevil.com",
        "%61cme",
        "acme%2eevil.com",
        "acme/../evil",
        "acme?x=evil.com",
        "https://evil.com/acme",
        "https://events.chargify.com/acme/../evil",
        "events.chargify.com.evil.com/acme",
        "-acme",
        "acme-",
        "a" * 64,
        "acme.evil",
        "",
        "   ",
        "acmé",
        "\\\\evil.com",
    ],
)
def test_injection_attempts_are_refused(value):
    with pytest.raises(SettingError, match="^Setting 'subdomain'"):
        resolve({"subdomain": value, "api_key": "k"})


def test_missing_subdomain_names_the_setting():
    with pytest.raises(SettingError, match="'subdomain': is required"):
        resolve({})


@pytest.mark.parametrize("value", ["mars", "usa", "production"])
def test_unknown_environment_is_refused(value):
    with pytest.raises(SettingError, match="^Setting 'environment'"):
        resolve({"subdomain": "acme", "environment": value})


@pytest.mark.parametrize("value", ["sandbox", "EBB (ASIA)", "prod"])
def test_unknown_server_is_refused(value):
    with pytest.raises(SettingError, match="^Setting 'server'"):
        resolve({"subdomain": "acme", "server": value})


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("http://127.0.0.2", "http://127.0.0.2"),
        ("https://proxy.example.com/maxio/", "https://proxy.example.com/maxio"),
    ],
)
def test_base_url_override(base_url, expected):
    conn = resolve({"subdomain": "acme", "base_url": base_url, "server": "ebb"})
    assert conn.read_url == conn.server_url == expected


@pytest.mark.parametrize(
    "base_url",
    [
        "http://proxy.example.com",
        "http://evil.com#@127.0.0.1",
        "http://127.0.0.1.evil.com",
        "https://user:pw@proxy.example.com",
        "https://proxy.example.com?x=1",
        "ftp://127.0.0.1",
        "127.0.0.1:8080",
        "https://proxy.example.com:99999",
        "https://proxy example.com",
        "https://proxy.example.com:",
    ],
)
def test_unsafe_base_url_is_refused(base_url):
    with pytest.raises(SettingError, match="^Setting 'base_url'"):
        resolve({"subdomain": "acme", "base_url": base_url})
