"""tap-maxio: a Singer tap for Maxio Advanced Billing."""
