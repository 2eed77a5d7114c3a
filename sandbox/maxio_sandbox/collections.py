"""The list endpoints: a declarative registry, and the filter/sort/page rules they share.

Adding a collection takes a `Factory` (see data.py) and one `CollectionSpec` here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .accounts import (
    CustomerMetadata,
    CustomerMetafields,
    Prepayments,
    ServiceCredits,
    SubscriptionGroups,
    SubscriptionMetadata,
    SubscriptionMetafields,
    SubscriptionNotes,
)
from .billing import (
    CREDIT_NOTE_FLAGS,
    EVENT_KEYS,
    INVOICE_FLAGS,
    CreditNotes,
    Customers,
    Events,
    Invoices,
    PaymentProfiles,
    Subscriptions,
)
from .catalog import Coupons, CouponSubcodes, Offers, ProductFamilies, Products, ReasonCodes
from .clock import SiteClock, first_second_from, last_second_until, parse_date
from .features import FEATURE_KINDS, ComponentFeatures, FeatureTemplates
from .invoicing import INVOICE_EVENT_TYPES, PROFORMA_FLAGS, InvoiceEvents, ProformaInvoices
from .legacy import LegacyInvoices, Statements, Transactions
from .pricing import ComponentPricePoints, Components, ProductPricePoints
from .renewals import RENEWAL_STATUSES, GroupPrepayments, ScheduledRenewals
from .table import NULL
from .usage import Allocations, SubscriptionComponents, Usages

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from .config import Invoicing
    from .data import Factory
    from .table import Only, Scope, Table

MAX_PER_PAGE = 200
PageInfo = Literal["counts", "meta", "meta_pages", "pages", "feature_counts"] | None
BASIC_DATE_FIELDS = {"created_at": "created_at", "updated_at": "updated_at"}
TRUE = ("true", "1")


@dataclass(frozen=True)
class Kinds:
    """A list filtered by type: `param` names some of `names`, stored by index in `column`."""

    param: str
    names: tuple[str, ...]
    column: str = "kind"
    opt_in: Mapping[str, str] = field(default_factory=dict)
    """Types listed only when a flag parameter is true: name -> parameter."""


class QueryError(ValueError):
    """A request Maxio answers with 422 (or `status`) and {"errors": [...]}."""

    def __init__(self, message: str, status: int = 422) -> None:
        """The message shown in `errors`, and the status."""
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Choice:
    """An enum query parameter that keeps the rows whose column holds the chosen value.

    For short lists only: the rows are filtered after they are selected.
    """

    param: str
    column: str
    values: Mapping[str, int | None]
    """Parameter value -> column value; None keeps every row."""
    default: str | None = None
    """The value when the parameter is not sent (None: every row)."""


@dataclass(frozen=True)
class CollectionSpec:
    """How one list endpoint behaves."""

    name: str
    path: str
    factory: type[Factory]
    wrapper: str | None = None
    """Records come as [{"<wrapper>": {...}}]."""
    records_key: str | None = None
    """Records come as {"<records_key>": [...]}."""
    count: int = 50
    """Records seeded when the config does not say."""
    invoicing: Invoicing | None = None
    """The invoicing model of the sites the path exists on; None: every site."""
    per_page: int = 20
    """Records per page when the request does not say."""
    page_size: int | None = None
    """Every page holds this many records: `per_page` is not a parameter of the endpoint."""
    paged: bool = True
    """False: the whole list in one response, page and per_page ignored."""
    whole_unless_paged: bool = False
    """The whole list in one response unless `page` or `per_page` is sent."""
    choices: tuple[Choice, ...] = ()
    """Enum filters (status=archived...)."""
    date_fields: Mapping[str, str] = field(default_factory=dict)
    """Supported `date_field` values -> column. Any other value disables date filters."""
    day_columns: frozenset[str] = frozenset()
    """Columns holding calendar days: only start_date/end_date apply to them."""
    default_date_field: str | None = None
    default_datetime_field: str | None = None
    """The default date_field when only start_datetime/end_datetime are given, if different."""
    date_field_param: bool = True
    """False: the endpoint has no date_field parameter and always uses the default."""
    datetime_params: bool = True
    """Whether start_datetime/end_datetime exist."""
    date_params: tuple[str, str] = ("start_date", "end_date")
    filter_style: Literal["plain", "filter"] = "plain"
    """"filter": date filter parameters are spelled filter[date_field], filter[start_date]..."""
    sort_param: str = "sort"
    direction_param: str = "direction"
    sorts: Mapping[str, str] = field(default_factory=dict)
    """Supported sort values -> column; "pk" is the primary key."""
    default_sort: str = "pk"
    default_direction: Literal["asc", "desc"] = "asc"
    direction: bool = True
    """Whether the `direction` parameter is honoured."""
    since_id: Literal["inclusive", "exclusive"] | None = None
    """since_id/max_id filter and order by id, overriding date filters; "exclusive":
    since_id returns only greater ids (max_id stays inclusive). None: no id filter."""
    flags: tuple[str, ...] = ()
    """Boolean parameters (line_items=true...) that add arrays to the records."""
    includes: tuple[str, ...] = ()
    """include[] values that add fields to the records."""
    scalar: str | None = None
    """Records are served as this one field's bare values: {"codes": ["A1", ...]}."""
    page_info: PageInfo = None
    """Paging fields around the records (see `envelope`)."""
    hidden: tuple[str, str] | None = None
    """(column, parameter): rows with a value in the column (archived_at, deleted_at)
    are listed only when the parameter is true."""
    kinds: Kinds | None = None
    """A filter by type (event key)."""

    @property
    def parameterised(self) -> bool:
        """Whether the path names a parent record, e.g. /subscriptions/{subscription_id}/..."""
        return "{" in self.path

    def envelope(self, records: list[dict[str, Any]], p: Plan, total: int = 0) -> Any:
        """The response body holding a page of records; `total` counts every page's."""
        items: list[Any] = [r[self.scalar] for r in records] if self.scalar else records
        if self.wrapper:
            items = [{self.wrapper: r} for r in records]
        if self.records_key is None:
            return items
        key = self.records_key
        pages = -(-total // p.limit)
        if self.page_info == "counts":  # metafields, metadata
            return {
                "total_count": total,
                "current_page": p.page,
                "total_pages": pages,
                "per_page": p.limit,
                key: items,
            }
        body: dict[str, Any] = {key: items}
        if self.page_info == "meta":  # subscription groups
            body["meta"] = {"current_page": p.page, "total_count": total}
        elif self.page_info == "meta_pages":  # proforma invoices
            body["meta"] = {
                "total_count": total,
                "current_page": p.page,
                "total_pages": pages,
                "status_code": 200,
            }
        elif self.page_info == "pages":  # invoice events
            body.update(page=p.page, per_page=p.limit, total_pages=pages)
        elif self.page_info == "feature_counts":  # feature templates
            # Simplified: the spec also counts archived ones when no active one matches.
            archived = total if p.chosen.get("status") == "archived" else 0
            body.update(total_count=total, archived_count=archived)
        return body


SUBSCRIPTION_DATE_FIELDS = {
    name: name
    for name in (
        "created_at", "updated_at", "activated_at", "canceled_at", "expires_at",
        "trial_started_at", "trial_ended_at", "current_period_ends_at",
    )
} | {"current_period_starts_at": "current_period_started_at"}  # fmt: skip

# In generation order: a collection's records reference those seeded before it.
REGISTRY: tuple[CollectionSpec, ...] = (
    CollectionSpec(
        "product_families", "/product_families.json", ProductFamilies, wrapper="product_family",
        count=3, paged=False, date_fields=BASIC_DATE_FIELDS, default_date_field="updated_at",
    ),
    CollectionSpec(
        "products", "/products.json", Products, wrapper="product", count=8,
        date_fields=BASIC_DATE_FIELDS, default_date_field="updated_at",
        hidden=("archived_at", "include_archived"),
    ),
    CollectionSpec(
        "coupons", "/coupons.json", Coupons, wrapper="coupon", count=5, per_page=30,
        date_fields=BASIC_DATE_FIELDS, default_date_field="updated_at", filter_style="filter",
        hidden=("archived_at", "filter[include_archived]"),
    ),
    CollectionSpec(
        "offers", "/offers.json", Offers, records_key="offers", count=3,
        hidden=("archived_at", "include_archived"),
    ),
    CollectionSpec(
        "reason_codes", "/reason_codes.json", ReasonCodes, wrapper="reason_code", count=4
    ),
    CollectionSpec(
        # `direction` orders by creation; the spec's example lists oldest first.
        "customers", "/customers.json", Customers, wrapper="customer", count=120, per_page=50,
        date_fields=BASIC_DATE_FIELDS, default_date_field="updated_at",
    ),
    CollectionSpec(
        "subscriptions", "/subscriptions.json", Subscriptions, wrapper="subscription", count=300,
        date_fields=SUBSCRIPTION_DATE_FIELDS, default_date_field="updated_at",
        sorts={
            "signup_date": "created_at", "period_start": "current_period_started_at",
            "period_end": "current_period_ends_at", "next_assessment": "next_assessment_at",
            "updated_at": "updated_at", "created_at": "created_at",
            "total_payments": "total_revenue_in_cents", "id": "pk",
            "open_balance": "balance_in_cents", "expires_at": "expires_at",
        },
        default_sort="created_at", default_direction="desc",
        includes=("coupons", "self_service_page_token"),
    ),
    CollectionSpec(
        "payment_profiles", "/payment_profiles.json", PaymentProfiles,
        wrapper="payment_profile", count=100,
    ),
    CollectionSpec(
        # since_id inclusive; newest first unless direction=asc.
        "events", "/events.json", Events, wrapper="event", count=400,
        date_fields={"created_at": "created_at"}, default_date_field="created_at",
        default_direction="desc", since_id="inclusive", kinds=Kinds("filter", EVENT_KEYS),
    ),
    CollectionSpec(
        "invoices", "/invoices.json", Invoices, records_key="invoices", count=250,
        invoicing="relationship",
        date_fields=BASIC_DATE_FIELDS
        | {"issue_date": "issue_date", "due_date": "due_date", "paid_date": "paid_date"},
        day_columns=frozenset({"issue_date", "due_date", "paid_date"}),
        default_date_field="due_date",
        sorts={
            "status": "status", "total_amount": "total_amount", "due_amount": "due_amount",
            "created_at": "created_at", "updated_at": "updated_at", "issue_date": "issue_date",
            "due_date": "due_date", "number": "number",
        },
        default_sort="number", default_direction="desc", flags=INVOICE_FLAGS,
    ),
    CollectionSpec(
        # Ordered by sequence number. Without date_field, date filters use issue_date, or
        # created_at when only datetimes are given (the 2026 spec).
        "credit_notes", "/credit_notes.json", CreditNotes, records_key="credit_notes",
        count=60, invoicing="relationship",
        date_fields={**BASIC_DATE_FIELDS, **{d: d for d in ("issue_date", "applied_date")}},
        day_columns=frozenset({"issue_date", "applied_date"}), default_date_field="issue_date",
        default_datetime_field="created_at",
        default_sort="number", flags=CREDIT_NOTE_FLAGS,
    ),
    CollectionSpec(
        "statements", "/statements.json", Statements, wrapper="statement", count=100,
        invoicing="legacy",
        sorts={name: name for name in ("closed_at", "created_at", "opened_at", "settled_at")},
        default_sort="created_at",
    ),
    CollectionSpec(
        # The legacy spec: created_at order "then id within the same second", newest first;
        # an id filter forces id order; since_date/until_date are whole days.
        "transactions", "/transactions.json", Transactions, wrapper="transaction", count=400,
        invoicing="legacy", date_fields={"created_at": "created_at"},
        default_date_field="created_at", date_field_param=False, datetime_params=False,
        date_params=("since_date", "until_date"),
        sort_param="order_by", sorts={"id": "pk", "created_at": "created_at"},
        default_sort="created_at", default_direction="desc", since_id="inclusive",
    ),
    CollectionSpec(
        # Legacy invoices: only whole-day created_at filters, newest first, no direction.
        "invoices", "/invoices.json", LegacyInvoices, wrapper="invoice", count=250,
        invoicing="legacy", date_fields={"created_at": "created_at"},
        default_date_field="created_at", date_field_param=False, datetime_params=False,
        default_direction="desc", direction=False,
    ),
    # --- seeded after the collections above, so that adding these changed none of them ---
    CollectionSpec(
        "components", "/components.json", Components, wrapper="component", count=12,
        date_fields=BASIC_DATE_FIELDS, default_date_field="updated_at", direction=False,
        flags=("include_features",), hidden=("archived_at", "include_archived"),
    ),
    CollectionSpec(
        # Every component's default price point, then alternatives and custom prices.
        "component_price_points", "/components_price_points.json", ComponentPricePoints,
        records_key="price_points", count=24, date_fields=BASIC_DATE_FIELDS,
        default_date_field="updated_at", filter_style="filter", includes=("currency_prices",),
    ),
    CollectionSpec(
        "product_price_points", "/products_price_points.json", ProductPricePoints,
        records_key="price_points", count=20, date_fields=BASIC_DATE_FIELDS,
        default_date_field="updated_at", filter_style="filter", includes=("currency_prices",),
    ),
    CollectionSpec(
        "coupon_subcodes", "/coupons/{coupon_id}/codes.json", CouponSubcodes,
        records_key="codes", scalar="code", count=8, direction=False,
    ),
    CollectionSpec(
        "subscription_components", "/subscriptions_components.json", SubscriptionComponents,
        records_key="subscriptions_components", count=60,
        date_fields={"updated_at": "updated_at"}, default_date_field="updated_at",
        sorts={"id": "pk", "updated_at": "updated_at"},
        includes=("subscription", "historic_usages"),
    ),
    CollectionSpec(
        # "The 50 most recent allocations", newest first: only `page` is documented.
        "allocations",
        "/subscriptions/{subscription_id}/components/{component_id}/allocations.json",
        Allocations, wrapper="allocation", count=40, default_direction="desc", direction=False,
        page_size=50,
    ),
    CollectionSpec(
        # since_id and max_id inclusive; the spec documents no order and no direction, so
        # newest first whatever is asked; whole-day created_at bounds.
        "usages", "/subscriptions/{subscription_id}/components/{component_id}/usages.json",
        Usages, wrapper="usage", count=40, date_fields={"created_at": "created_at"},
        default_date_field="created_at", date_field_param=False, datetime_params=False,
        date_params=("since_date", "until_date"), default_direction="desc", direction=False,
        since_id="inclusive",
    ),
    CollectionSpec(
        "subscription_groups", "/subscription_groups.json", SubscriptionGroups,
        records_key="subscription_groups", count=10, direction=False, page_info="meta",
        includes=("account_balances",),
    ),
    CollectionSpec(
        "prepayments", "/subscriptions/{subscription_id}/prepayments.json", Prepayments,
        records_key="prepayments", count=30, date_fields={"created_at": "created_at"},
        default_date_field="created_at", datetime_params=False, filter_style="filter",
        direction=False,
    ),
    CollectionSpec(
        # Newest first, as in the spec's example.
        "service_credits", "/subscriptions/{subscription_id}/service_credits/list.json",
        ServiceCredits, records_key="service_credits", count=30, default_direction="desc",
    ),
    CollectionSpec(
        "subscription_notes", "/subscriptions/{subscription_id}/notes.json", SubscriptionNotes,
        wrapper="note", count=40, default_direction="desc", direction=False,
    ),
    CollectionSpec(
        # Ordered by number, newest first, like /invoices.json.
        "proforma_invoices", "/subscriptions/{subscription_id}/proforma_invoices.json",
        ProformaInvoices, records_key="proforma_invoices", count=30, invoicing="relationship",
        page_info="meta_pages", default_sort="number", default_direction="desc",
        flags=PROFORMA_FLAGS,
    ),
    CollectionSpec(
        # since_id is exclusive here, and the order always ascending.
        "invoice_events", "/invoices/events.json", InvoiceEvents, records_key="events",
        count=60, invoicing="relationship", per_page=100, since_id="exclusive",
        direction=False, page_info="pages",
        kinds=Kinds(
            "event_types", INVOICE_EVENT_TYPES,
            opt_in={"change_invoice_status": "with_change_invoice_status"},
        ),
    ),
    CollectionSpec(
        "subscription_metafields", "/subscriptions/metafields.json", SubscriptionMetafields,
        records_key="metafields", count=5, page_info="counts",
    ),
    CollectionSpec(
        # Filtered on an updated_at the rows do not show.
        "subscription_metadata", "/subscriptions/metadata.json", SubscriptionMetadata,
        records_key="metadata", count=60, page_info="counts", date_fields=BASIC_DATE_FIELDS,
        default_date_field="updated_at", hidden=("deleted_at", "with_deleted"),
    ),
    CollectionSpec(
        "customer_metafields", "/customers/metafields.json", CustomerMetafields,
        records_key="metafields", count=5, page_info="counts",
    ),
    CollectionSpec(
        "customer_metadata", "/customers/metadata.json", CustomerMetadata,
        records_key="metadata", count=60, page_info="counts", date_fields=BASIC_DATE_FIELDS,
        default_date_field="updated_at", hidden=("deleted_at", "with_deleted"),
    ),
    # --- the 2026 spec's features, renewals and group prepayments, seeded last ---
    CollectionSpec(
        # Active templates only unless `status` says; whole days of updated_at.
        "features", "/features.json", FeatureTemplates, records_key="items", count=24,
        whole_unless_paged=True, page_info="feature_counts",
        date_fields={"updated_at": "updated_at"}, default_date_field="updated_at",
        date_field_param=False, datetime_params=False, date_params=("updated_from", "updated_to"),
        sort_param="sort_by", direction_param="sort_direction",
        sorts={n: n for n in ("name", "updated_at", "kind", "value_type")},
        choices=(
            Choice("status", "archived", {"active": 0, "archived": 1, "all": None}, "active"),
            Choice("kind", "kind", {**FEATURE_KINDS, "all": None}),
        ),
    ),
    CollectionSpec(
        "component_features", "/components/{component_id}/features.json", ComponentFeatures,
        records_key="features", count=16, paged=False,
    ),
    CollectionSpec(
        "scheduled_renewals", "/subscriptions/{subscription_id}/scheduled_renewals.json",
        ScheduledRenewals, records_key="scheduled_renewal_configurations", count=20,
        paged=False, choices=(Choice("status", "status", RENEWAL_STATUSES),),
    ),
    CollectionSpec(
        "subscription_group_prepayments", "/subscription_groups/{uid}/prepayments.json",
        GroupPrepayments, records_key="prepayments", wrapper="prepayment", count=12,
        date_fields={"created_at": "created_at"}, default_date_field="created_at",
        datetime_params=False, filter_style="filter", direction=False,
    ),
)  # fmt: skip


def active_specs(invoicing: Invoicing) -> list[CollectionSpec]:
    """The collections a site of one invoicing model has, in generation order."""
    return [s for s in REGISTRY if s.invoicing in (None, invoicing)]


@dataclass(frozen=True)
class Plan:
    """A list request reduced to what the table needs."""

    order: str
    descending: bool
    where: str | None
    bounds: tuple[int | None, int | None]
    page: int
    limit: int
    flags: frozenset[str]
    only: Only | None = None
    """Rows kept by value (not archived, of some types), after the other filters."""
    keep: tuple[tuple[str, int], ...] = ()
    """(column, value) pairs every row must hold (from `choices`)."""
    chosen: Mapping[str, str] = field(default_factory=dict)
    """The value of each choice parameter, sent or default."""

    @property
    def offset(self) -> int:
        """Rows before the page."""
        return (self.page - 1) * self.limit


def plan(spec: CollectionSpec, params: Mapping[str, Sequence[str]], clock: SiteClock) -> Plan:
    """Read a list request's query the way Maxio does (raises QueryError for a 422)."""

    def last(name: str) -> str | None:
        values = params.get(name)
        return values[-1] if values and values[-1] != "" else None

    page = _positive_int(last("page"), 1, "page")
    per_page = spec.page_size or min(
        _positive_int(last("per_page"), spec.per_page, "per_page"), MAX_PER_PAGE
    )
    whole = spec.whole_unless_paged and last("page") is None and last("per_page") is None
    if not spec.paged or whole:
        page, per_page = 1, 2**62
    descending = spec.default_direction == "desc"
    direction = (last(spec.direction_param) or "").lower()
    if spec.direction and direction in ("asc", "desc"):
        descending = direction == "desc"
    order = spec.sorts.get(last(spec.sort_param) or "", spec.default_sort)
    where, bounds = _date_filter(spec, last, clock)
    since_id, max_id = last("since_id"), last("max_id")
    if spec.since_id and (since_id or max_id):
        where = order = "pk"
        low = _int(since_id, "since_id")
        if low is not None and spec.since_id == "exclusive":
            low += 1
        bounds = (low, _int(max_id, "max_id"))
    flags = {f for f in spec.flags if (last(f) or "").lower() in TRUE}
    for value in [*params.get("include[]", ()), *params.get("include", ())]:
        flags.update(v for v in value.split(",") if v in spec.includes)
    only = _only(spec, params, last)
    keep, chosen = _choices(spec, last)
    return Plan(
        order, descending, where, bounds, page, per_page, frozenset(flags), only, keep, chosen
    )


def _only(
    spec: CollectionSpec, params: Mapping[str, Sequence[str]], last: Callable[[str], str | None]
) -> Only | None:
    """The rows a list shows by value: unarchived ones, or those of the types asked for."""
    if spec.hidden is not None:
        column, flag = spec.hidden
        return None if (last(flag) or "").lower() in TRUE else (column, frozenset({NULL}))
    kinds = spec.kinds
    if kinds is None:
        return None
    # `filter=a,b` or `filter[]=a&filter[]=b`, as the spec's arrays in a query go.
    asked = {
        name
        for value in [*params.get(kinds.param, ()), *params.get(f"{kinds.param}[]", ())]
        for name in value.split(",")
        if name
    }
    wanted = {i for i, name in enumerate(kinds.names) if not asked or name in asked}
    for name, flag in kinds.opt_in.items():
        if (last(flag) or "").lower() not in TRUE:
            wanted.discard(kinds.names.index(name))
    return None if len(wanted) == len(kinds.names) else (kinds.column, frozenset(wanted))


def _choices(
    spec: CollectionSpec, last: Callable[[str], str | None]
) -> tuple[tuple[tuple[str, int], ...], dict[str, str]]:
    """The rows each enum filter keeps; a value outside its enum is a 422."""
    keep: list[tuple[str, int]] = []
    chosen: dict[str, str] = {}
    for choice in spec.choices:
        value = last(choice.param) or choice.default
        if value is None:
            continue
        if value not in choice.values:
            raise QueryError(f"{choice.param} must be one of: {', '.join(choice.values)}")
        chosen[choice.param] = value
        column_value = choice.values[value]
        if column_value is not None:
            keep.append((choice.column, column_value))
    return tuple(keep), chosen


def run(table: Table, p: Plan, scope: Scope | None = None) -> list[int]:
    """The rows of one page (of one parent's records, with a scope)."""
    if p.keep:
        return _kept(table, p, scope)[p.offset : p.offset + p.limit]
    return table.select(
        p.order, p.descending, where=p.where, bounds=p.bounds, offset=p.offset, limit=p.limit,
        scope=scope, only=p.only,
    )  # fmt: skip


def total(table: Table, p: Plan, scope: Scope | None = None) -> int:
    """The rows of every page, for envelopes that count them."""
    if p.keep:
        return len(_kept(table, p, scope))
    return table.count(
        p.order, p.descending, where=p.where, bounds=p.bounds, scope=scope, only=p.only
    )


def _kept(table: Table, p: Plan, scope: Scope | None) -> list[int]:
    """Every page's rows that hold the chosen enum values (short lists only)."""
    rows = table.select(
        p.order, p.descending, where=p.where, bounds=p.bounds, offset=0, limit=2**62,
        scope=scope, only=p.only,
    )  # fmt: skip
    return [r for r in rows if all(table.cols[c][r] == v for c, v in p.keep)]


#: Path parameters that are uids (grp_...), not integer ids.
UID_PARAMS = frozenset({"uid"})


def path_pattern(path: str) -> re.Pattern[str]:
    """A regex for a path with {parameters}: an integer id, or a uid for `uid`."""
    parts = re.split(r"\{(\w+)\}", path)
    regex = "".join(
        (f"(?P<{part}>[a-z]+_[0-9a-z]+)" if part in UID_PARAMS else f"(?P<{part}>[0-9]+)")
        if i % 2
        else re.escape(part)
        for i, part in enumerate(parts)
    )
    return re.compile(regex + r"\Z")


def path_ids(match: re.Match[str]) -> dict[str, int | str]:
    """The parameters a path names: ids as integers, uids as they are."""
    return {k: v if k in UID_PARAMS else int(v) for k, v in match.groupdict().items()}


def _date_filter(
    spec: CollectionSpec, last: Callable[[str], str | None], clock: SiteClock
) -> tuple[str | None, tuple[int | None, int | None]]:
    def param(name: str) -> str:
        return f"filter[{name}]" if spec.filter_style == "filter" else name

    name = last(param("date_field")) if spec.date_field_param else None
    if name is None:
        datetimes = spec.datetime_params and any(
            last(param(p)) for p in ("start_datetime", "end_datetime")
        )
        name = (datetimes and spec.default_datetime_field) or spec.default_date_field
    column = spec.date_fields.get(name or "")
    if column is None:
        return None, (None, None)  # Maxio ignores a date_field it does not support
    is_day = column in spec.day_columns
    bounds: list[int | None] = [None, None]
    for i, (dt_param, day_param) in enumerate(
        zip(("start_datetime", "end_datetime"), spec.date_params, strict=True)
    ):
        dt_text = last(param(dt_param)) if spec.datetime_params and not is_day else None
        day_text = last(param(day_param))
        if dt_text is not None:
            moment = clock.parse_datetime(dt_text)
            if moment is None:
                raise QueryError(f"{dt_param} is not a valid datetime: {dt_text!r}")
            # Both ends inclusive, to the millisecond: a record at 05.123 is after 05.
            bounds[i] = first_second_from(moment) if i == 0 else last_second_until(moment)
        elif day_text is not None:
            day = parse_date(day_text)
            if day is None:
                raise QueryError(f"{day_param} is not a valid date (YYYY-MM-DD): {day_text!r}")
            bounds[i] = day.toordinal() if is_day else clock.day_bounds(day)[i]
    if bounds == [None, None]:
        return None, (None, None)
    return column, (bounds[0], bounds[1])


def _int(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"{name} must be an integer") from None


def _positive_int(text: str | None, default: int, name: str) -> int:
    value = _int(text, name)
    if value is None:
        return default
    if value < 1:
        raise QueryError(f"{name} must be greater than or equal to 1")
    return value
