"""A fake Maxio Advanced Billing site, for tests, benchmarks and demos of the tap.

Usage::

    with Sandbox(SandboxConfig(seed=1)) as sb:
        requests.get(f"{sb.url}/subscriptions.json", auth=("sandbox-key", "x"))
"""

from .collections import REGISTRY, CollectionSpec
from .config import SandboxConfig
from .server import RequestLog, Sandbox, Snapshot

__all__ = ["REGISTRY", "CollectionSpec", "RequestLog", "Sandbox", "SandboxConfig", "Snapshot"]
