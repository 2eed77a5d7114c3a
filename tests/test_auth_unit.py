"""The API key goes out only as Maxio's Basic header, and never into a log line."""

from __future__ import annotations

import io
import logging
import sys

import pytest
import requests

from tap_maxio.auth import RedactSecrets, authenticator, install_redaction

KEY = "sk_live_4f2a9c7e1b3d"


def sent_authorization(api_key: str) -> str:
    """The Authorization header a request signed by the tap's authenticator carries."""
    request = requests.Request("GET", "https://acme.chargify.com/customers.json").prepare()
    return authenticator(api_key)(request).headers["Authorization"]


def test_the_key_is_the_basic_username_and_the_password_is_x():
    expected = requests.Request("GET", "https://x", auth=(KEY, "x")).prepare()
    assert sent_authorization(KEY) == expected.headers["Authorization"]


def test_the_header_sent_is_the_header_redacted():
    """A debug log of the request's headers shows neither the key nor its token."""
    header = sent_authorization(KEY)
    record = logging.LogRecord("urllib3", logging.DEBUG, __file__, 1, "send: %r", (header,), None)
    assert RedactSecrets(KEY).filter(record) is True  # the line is kept, only rewritten
    shown = record.getMessage()
    assert "[REDACTED]" in shown
    assert KEY not in shown
    assert header.removeprefix("Basic ") not in shown


def test_a_preformatted_message_is_redacted():
    """A library that formats the line itself passes no args: it is redacted too."""
    record = logging.LogRecord("urllib3", logging.DEBUG, __file__, 1, f"key={KEY}", None, None)
    RedactSecrets(KEY).filter(record)
    assert record.getMessage() == "key=[REDACTED]"


def test_a_message_without_the_key_is_unchanged():
    record = logging.LogRecord("tap", logging.INFO, __file__, 1, "%d of %s", (3, "pages"), None)
    RedactSecrets(KEY).filter(record)
    assert record.getMessage() == "3 of pages"


def test_exception_text_is_redacted():
    try:
        raise ValueError(f"bad key {KEY}")
    except ValueError:
        record = logging.LogRecord("tap", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    RedactSecrets(KEY).filter(record)
    text = logging.Formatter().format(record)
    assert "bad key [REDACTED]" in text
    assert KEY not in text


@pytest.fixture
def root_handler():
    """A handler on the root logger, as the SDK's CLI sets one up; removed after."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    yield handler, stream
    root.setLevel(level)
    root.removeHandler(handler)
    for other in root.handlers:  # pytest's own capture handlers got the filter too
        for found in [f for f in other.filters if isinstance(f, RedactSecrets)]:
            other.removeFilter(found)


def test_install_redaction_guards_a_library_log_line(root_handler):
    handler, stream = root_handler
    install_redaction(KEY)
    install_redaction(KEY)  # a second tap in the same process adds no second filter
    logging.getLogger("urllib3.connectionpool").debug("header: %s", sent_authorization(KEY))
    assert stream.getvalue() == "header: Basic [REDACTED]\n"
    assert sum(isinstance(f, RedactSecrets) for f in handler.filters) == 1


def test_no_key_installs_no_filter(root_handler):
    handler, _ = root_handler
    install_redaction("")
    assert handler.filters == []
