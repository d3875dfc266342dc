"""A spec's validation errors as the user reads them: ``{field, rule, value}`` per problem,
the field a dotted path in the document, the rule in words (``must be > 0``), union branches
folded so that a nested problem wins over its parent's alternatives."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from study.suggest import did_you_mean

_RULES = {
    "greater_than": lambda c: f"must be > {c['gt']}",
    "greater_than_equal": lambda c: f"must be >= {c['ge']}",
    "less_than": lambda c: f"must be < {c['lt']}",
    "less_than_equal": lambda c: f"must be <= {c['le']}",
    "too_short": lambda c: f"must have at least {c['min_length']} item(s)",
    "too_long": lambda c: f"must have at most {c['max_length']} item(s)",
    "string_too_short": lambda c: f"must have at least {c['min_length']} character(s)",
    "string_too_long": lambda c: f"must have at most {c['max_length']} character(s)",
    "literal_error": lambda c: f"must be one of {c['expected']}",
    "extra_forbidden": lambda c: "is not a known key",
    "missing": lambda c: "is required",
    "finite_number": lambda c: "must be a finite number",
}


def _loc(loc: tuple[Any, ...]) -> list[str]:
    # Drop pydantic's union-branch tags (e.g. "str", "dict[str,any]", "AshaSpec").
    out = []
    for part in loc:
        text = str(part)
        if isinstance(part, str) and (
            text in {"str", "int", "float", "bool"}
            or text.startswith(("dict[", "list[", "literal[", "function-", "constrained-"))
            or text[:1].isupper()
        ):
            continue
        out.append(text)
    return out


def spec_problems(exc: ValidationError, *, root: type[BaseModel]) -> list[dict[str, Any]]:
    """pydantic's errors as ``{field, rule, value}`` (field: the dotted path in the ``root``
    model validated).

    Union branches are folded: a problem inside a nested key wins over its parent's "must be
    a ..." alternatives, and alternatives for the same field are joined with "or".
    """
    by_field: dict[str, dict[str, Any]] = {}
    for err in exc.errors(include_url=False):
        parts = _loc(err["loc"])
        ctx = err.get("ctx") or {}
        value = err.get("input")
        if err["type"] == "hprobust":
            if ctx.get("field"):
                parts.append(str(ctx["field"]))
            rule, value = str(ctx["rule"]), ctx.get("value")
        elif err["type"] in _RULES:
            rule = _RULES[err["type"]]({k: _num(v) for k, v in ctx.items()})
            if err["type"] == "extra_forbidden" and parts:
                rule += did_you_mean(parts[-1], _known_keys(parts[:-1], root))
            if err["type"] == "missing":
                value = None
        else:
            msg = err["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
            rule = "must be " + msg
        field = ".".join(p for p in parts if p) or "spec"
        if field in by_field:
            if rule not in by_field[field]["rule"]:
                by_field[field]["rule"] += f" or {rule}"
        else:
            by_field[field] = {"field": field, "rule": rule, "value": value}
    fields = list(by_field)
    return [by_field[f] for f in fields if not any(g.startswith(f + ".") for g in fields if g != f)]


def _known_keys(parts: list[str], root: type[BaseModel]) -> list[str]:
    """The keys of the model at the dotted path ``parts`` in ``root`` (list indices skipped)."""
    model: Any = root
    for part in parts:
        if part.isdigit():
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        todo, model = [field.annotation], None
        while todo:  # the first pydantic model inside Optional/Union/Annotated/list
            annotation = todo.pop(0)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation
                break
            todo.extend(typing.get_args(annotation))
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _num(value: Any) -> Any:
    return f"{value:g}" if isinstance(value, float) else value
