"""Entitlements (2026 spec): feature templates, and the features attached to components."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .data import ChildFactory, Factory, Record, Row, enum_rank, later
from .pricing import Components

if TYPE_CHECKING:
    import random

# (name, kind, value type, unit): service rights choose their value type.
_TEMPLATES: tuple[tuple[str, str, str, str | None], ...] = (
    ("API calls", "usage_limit", "numeric", "requests"),
    ("Audit log", "access_right", "boolean", None),
    ("Custom domain", "access_right", "boolean", None),
    ("Dedicated support", "service_right", "text", None),
    ("Projects", "usage_limit", "numeric", "projects"),
    ("Response time", "service_right", "numeric", None),
    ("Single Sign-On", "access_right", "boolean", None),
    ("Storage", "usage_limit", "numeric", "GB"),
    ("Uptime SLA", "service_right", "text", None),
    ("Webhooks", "access_right", "boolean", None),
)  # fmt: skip
FEATURE_KINDS = enum_rank(("access_right", "usage_limit", "service_right"))
VALUE_TYPES = enum_rank(("text", "boolean", "numeric"))
PERIODICITY_UNITS = ("hour", "day", "week", "month", "year")
_TEXT_VALUES = ("Business hours", "24/7", "99.9%", "99.95%", "Named engineer")


class FeatureTemplates(Factory):
    """Features defined once for the site; archived rather than deleted.

    The `name` column holds the template's alphabetical rank (names repeat with a
    number past the pool), so that `sort_by=name` sorts by name.
    """

    columns = ("created_at", "updated_at", "archived_at", "archived", "name", "kind", "value_type")
    first_pk = 1001
    catalog = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """The next template of the pool; one in five archived since."""
        n = len(self.table)
        pool, repeat = n % len(_TEMPLATES), n // len(_TEMPLATES)
        _, kind, value_type, _ = _TEMPLATES[pool]
        values: Row = {
            **super().make(rng, pk, created, horizon),
            "name": pool * 1000 + repeat,
            "kind": FEATURE_KINDS[kind],
            "value_type": VALUE_TYPES[value_type],
            "archived": 0,
        }
        if rng.random() < 0.2:
            archived = later(rng, created, horizon)
            values.update(archived_at=archived, archived=1)
            values["updated_at"] = max(values["updated_at"] or created, archived)
        return values

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Archive an active template, or restore an archived one."""
        if self.get(row, "archived"):
            return {"archived": 0, "archived_at": None}
        return {"archived": 1, "archived_at": now}

    def template(self, row: int) -> tuple[str, str, str, str | None]:
        """Name, kind, value type and unit."""
        pool, repeat = divmod(self.table.cols["name"][row], 1000)
        name, kind, value_type, unit = _TEMPLATES[pool]
        return (f"{name} {repeat + 1}" if repeat else name), kind, value_type, unit

    def feature_key(self, row: int) -> str:
        """The template's immutable key, e.g. single_sign-on -> single_sign_on."""
        name = self.template(row)[0].lower()
        return "".join(c if c.isalnum() else "_" for c in name)

    def default_value(self, row: int) -> str:
        """A value of the template's value type."""
        value_type = self.template(row)[2]
        if value_type == "boolean":
            return "true"
        if value_type == "numeric":
            return str(self.rng(row).choice((10, 100, 1000, 10000)))
        return self.rng(row).choice(_TEXT_VALUES)

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A FeatureTemplate per the spec."""
        t = self.table
        name, kind, value_type, unit = self.template(row)
        limit = kind == "usage_limit"
        components = self.ds.factory("component_features", ComponentFeatures)
        attached = components.components_of(t.pk[row])
        return {
            "id": t.pk[row],
            "key": self.feature_key(row),
            "name": name,
            "description": None if row % 3 else f"{name} for the whole account",
            "kind": kind,
            "unit": unit,
            "value_type": value_type,
            "default_value": self.default_value(row),
            "default_periodicity_interval": 1 if limit else None,
            "default_periodicity_unit": "month" if limit else None,
            "archived_at": self.ts(row, "archived_at"),
            "created_at": self.ts(row, "created_at"),
            "updated_at": self.ts(row, "updated_at"),
            "products_count": len(attached),
            "plans_count": self.rng(row, 1).randrange(4),
        }


class ComponentFeatures(ChildFactory):
    """Feature templates attached to a component, with the value they grant.

    One in four applies to the component's default price point only.
    """

    columns = (
        "component_id", "template_id", "created_at", "updated_at", "archived_at", "override",
    )  # fmt: skip
    parent = "components"
    parent_column = "component_id"
    path_param = "component_id"
    first_pk = 88_000
    catalog = True  # no bulk-edited second: the catalog is edited one item at a time

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row | None:
        """A template the component has no feature of yet."""
        templates = self.ds.table("features")
        component_id = self.ds.table("components").pk[parent_row]
        mine = self.children_of("component_id", component_id)
        used = {self.table.cols["template_id"][r] for r in mine}
        free = [
            pk
            for r, pk in enumerate(templates.pk)
            if pk not in used
            and templates.cols["created_at"][r] <= created
            and not templates.cols["archived"][r]
        ]
        if not free:
            return None
        return {
            "pk": pk,
            "component_id": component_id,
            "template_id": rng.choice(free),
            "created_at": created,
            "updated_at": later(rng, created, horizon),
            "archived_at": None,
            "override": int(rng.random() < 0.25),
        }

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Change the value granted."""
        self.set_extra(row, value=str(rng.choice((5, 50, 500, 5000))))
        return {}

    def components_of(self, template_id: int) -> set[int]:
        """The components a template is attached to (the spec's products_count)."""
        cols = self.table.cols
        return {
            cols["component_id"][r]
            for r in range(len(self.table))
            if cols["template_id"][r] == template_id
        }

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A FeatureCatalogItem per the spec."""
        t = self.table
        templates = self.ds.factory("features", FeatureTemplates)
        template = templates.table.row_of(t.cols["template_id"][row])
        name, kind, _, _ = templates.template(template)
        limit = kind == "usage_limit"
        override = bool(t.cols["override"][row])
        components = self.ds.factory("components", Components)
        component = components.table.row_of(t.cols["component_id"][row])
        return {
            "id": t.pk[row],
            "feature_template_id": templates.table.pk[template],
            "feature_key": templates.feature_key(template),
            "feature_name": name,
            "feature_kind": kind,
            "value": templates.default_value(template),
            "periodicity_interval": 1 if limit else None,
            "periodicity_unit": self.rng(row).choice(PERIODICITY_UNITS[2:]) if limit else None,
            "price_point_type": "PricePoint" if override else None,
            "price_point_id": components.price_point(component) if override else None,
            "archived_at": self.ts(row, "archived_at"),
            "created_at": self.ts(row, "created_at"),
            "updated_at": self.ts(row, "updated_at"),
        }
