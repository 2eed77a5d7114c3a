"""Settings of one sandbox site."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: A site's invoicing model, named as in the tap's streams.toml.
Invoicing = Literal["relationship", "legacy"]


@dataclass
class SandboxConfig:
    """What the fake site holds and how badly it behaves."""

    api_key: str = "sandbox-key"
    """HTTP Basic username; the password is not checked (Maxio uses "x")."""
    subdomain: str = "acme"
    seed: int = 42
    counts: dict[str, int] = field(default_factory=dict)
    """Records per collection; collections not named get their registry default."""
    tied_batch: int = 30
    """Per collection, this many records share one updated_at second (a bulk import)."""
    site_timezone: str = "America/New_York"
    invoicing: Invoicing = "relationship"
    """"legacy": a statement-billing site (legacy invoices, statements, transactions)."""
    latency: float = 0.0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_reset: float = 0.0
    max_in_flight: int | None = None
    mutate_every: int | None = None
    expected_host: str | None = None
    history_start: str = "2021-01-01T00:00:00+00:00"
    history_end: str | None = None
    """End of the seeded history; None = one hour before start-up. Set it for data that
    does not depend on the wall clock."""
    disabled: dict[str, int] = field(default_factory=dict)
    """Collections of a feature the site has not enabled, each answered with this status
    (403 or 422) and Maxio's {"errors": [...]} body."""
    host: str = "127.0.0.1"
    port: int = 0
    """0 = an ephemeral port."""
