"""The building blocks of a spec's typed parts: strict models, problems that name the field,
the rule and the value, and the ``name``-or-mapping shorthand of schedules and datasets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from study.suggest import did_you_mean


def problem(field: str, rule: str, value: Any) -> PydanticCustomError:
    """A validation error whose field is ``field`` relative to the model that raises it."""
    return PydanticCustomError(
        "hprobust", "{field} {rule}", {"field": field, "rule": rule, "value": value}
    )


class StrictModel(BaseModel):
    """Unknown keys refused; strict types (no bool as number, no 2.0 as int); finite floats."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def one_of(kinds: tuple[str, ...], value: Any) -> str:
    """The rule ``must be one of a, b, c`` (with a suggestion for a near miss)."""
    return "must be one of " + ", ".join(sorted(kinds)) + did_you_mean(value, kinds)


def named(kinds: tuple[str, ...], what: str) -> Callable[[Any], Any]:
    """A before-validator: ``"name"`` -> ``{"name": "name"}``; the name must be known."""

    def convert(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value
        if isinstance(value, str):
            if value not in kinds:
                raise problem("", one_of(kinds, value), value)
            value = {"name": value}
        if not isinstance(value, dict):
            raise problem("", f"must be a {what} name or a mapping with 'name'", value)
        name = value.get("name")
        if name is None:
            raise problem("name", f"is required (one of {', '.join(sorted(kinds))})", None)
        if not isinstance(name, str) or name not in kinds:
            raise problem("name", one_of(kinds, name), name)
        return value

    return convert


def kind_tag(value: Any) -> str | None:
    """The union tag of a ``{name, ...}`` mapping or model (``fashion_mnist``: ``FashionMnist``)."""
    name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    return str(name).title().replace("_", "") if isinstance(name, str) else None
