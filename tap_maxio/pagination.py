"""Page-number pagination that stops on a short page."""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import PageNumberPaginator
from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Callable

    import requests


class MaxioPaginator(PageNumberPaginator):
    """Pages 1, 2, … until a page holds fewer records than were asked for.

    Maxio lowers a per_page above 200 to 200, so the page size compared against
    is the effective one, never more than 200.
    """

    MAX_PAGE_SIZE = 200

    def __init__(self, page_size: int, count: Callable[[requests.Response], int]) -> None:
        """Start at page 1; `count` says how many records a response holds."""
        super().__init__(start_value=1)
        self.page_size = min(page_size, self.MAX_PAGE_SIZE)
        self.count_records = count

    @override
    def has_more(self, response: requests.Response) -> bool:
        """A full page may be followed by another."""
        return self.count_records(response) >= self.page_size
