"""HTTP Basic auth with the site's API key, and keeping that key out of logs."""

from __future__ import annotations

import base64
import logging

from singer_sdk.authenticators import BasicAuthenticator
from typing_extensions import override

#: Maxio takes the API key as the username and ignores the password.
PASSWORD = "x"  # noqa: S105


def authenticator(api_key: str) -> BasicAuthenticator:
    """Return the authenticator that signs every request with the API key."""
    return BasicAuthenticator(username=api_key, password=PASSWORD)


class RedactSecrets(logging.Filter):
    """Replace the API key (and its Basic token) in every log record.

    The tap never logs the key itself; this guards what libraries may log, such
    as a request's headers in a debug line or an exception's text.
    """

    def __init__(self, api_key: str) -> None:
        """Remember the forms of the key that must not be printed."""
        super().__init__()
        token = base64.b64encode(f"{api_key}:{PASSWORD}".encode()).decode("ascii")
        self.secrets = [s for s in (token, api_key) if len(s) >= 4]

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message and exception text without the key."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        clean = self.redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True

    def redact(self, text: str) -> str:
        """Return the text with every secret replaced."""
        for secret in self.secrets:
            text = text.replace(secret, "[REDACTED]")
        return text


def install_redaction(api_key: str) -> None:
    """Attach the redaction filter to every handler of the root logger."""
    if not api_key:
        return
    redact = RedactSecrets(api_key)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(redact)
