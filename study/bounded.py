"""Bounded parsing of untrusted documents (specs from HTTP bodies, files and MLflow records).

A spec never needs YAML anchors or aliases, nor more than a few levels of nesting, so both are
refused *while* parsing, before anything is expanded or built:

- :func:`load_yaml`: PyYAML's safe loader, with every anchor and alias refused (a 1 KB alias
  "bomb" would otherwise expand to hundreds of megabytes) and a nesting limit;
- :func:`load_json`: ``json.loads`` after a linear scan that refuses deeper nesting (the C
  decoder would otherwise recurse until ``RecursionError``);
- both refuse strings that cannot be written as UTF-8 (lone surrogates such as ``"\\ud800"``).

Every refusal is a :class:`BoundedInputError` (a ``ValueError``) whose message states the rule
and where it broke; :func:`preview` gives the short, always-JSON-serializable form in which
error messages quote a bad value.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

from study.errors import ConfigError

__all__ = ["MAX_DEPTH", "BoundedInputError", "load_json", "load_yaml", "preview"]

#: Deepest nesting of mappings/lists a document may have (a spec needs about 4).
MAX_DEPTH = 32
#: How many characters of a bad value an error message quotes.
PREVIEW_CHARS = 80


class BoundedInputError(ConfigError):
    """A document breaks a parsing bound (alias, depth, encoding) or is not valid.

    ``rule`` is the message without position; ``line``/``column`` (1-based) say where, when
    known; ``field`` names the offending key (dotted path) when the document parsed.
    """

    def __init__(
        self,
        rule: str,
        *,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.rule, self.line, self.column, self.field = rule, line, column, field
        where = ""
        if line is not None:
            where = f" at line {line}" + (f", column {column}" if column is not None else "")
        super().__init__((f"{field} " if field else "") + rule + where)


# ---- YAML ----------------------------------------------------------------------------------


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases and limits nesting while composing."""

    max_depth = MAX_DEPTH

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise BoundedInputError(
                f"must not use YAML aliases (a spec never needs them), got *{event.anchor[:40]}",
                line=event.start_mark.line + 1,
                column=event.start_mark.column + 1,
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise BoundedInputError(
                f"must not use YAML anchors (a spec never needs them), got &{anchor[:40]}",
                line=event.start_mark.line + 1,
                column=event.start_mark.column + 1,
            )
        nested = isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent)
        if nested:
            self._depth += 1
            if self._depth > self.max_depth:
                raise BoundedInputError(
                    f"must be nested at most {self.max_depth} levels deep",
                    line=event.start_mark.line + 1,
                    column=event.start_mark.column + 1,
                )
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1


def load_yaml(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one YAML document safely (no aliases, no anchors, bounded depth, UTF-8 strings).

    Raises:
        BoundedInputError: a bound is broken or the text is not valid YAML (the message says
            what and where, without echoing the document).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BoundedInputError(
                f"must be UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
    loader = _BoundedLoader(text)
    loader.max_depth = max_depth
    try:
        data = loader.get_single_data()
    except BoundedInputError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise BoundedInputError(
            f"must be valid YAML ({_clip(str(problem))})",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer beyond Python's digit limit
        raise BoundedInputError(f"must be valid YAML ({_clip(str(exc))})") from None
    finally:
        loader.dispose()
    _check_strings(data)
    return data


# ---- JSON ----------------------------------------------------------------------------------

_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _json_depth_ok(raw: bytes, max_depth: int) -> bool:
    depth = 0
    for match in _JSON_TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return False
        elif token in (b"]", b"}"):
            depth -= 1
    return True


def load_json(raw: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON document with bounded nesting and UTF-8 strings.

    ``NaN``/``Infinity`` (and numbers such as ``1e400`` that overflow to infinity) parse as
    floats; the spec refuses them field by field, naming the field.

    Raises:
        BoundedInputError: too deep, not UTF-8, lone surrogates, or not valid JSON.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not _json_depth_ok(data, max_depth):
        raise BoundedInputError(f"must be nested at most {max_depth} levels deep")
    try:
        value = json.loads(data)
    except RecursionError:  # unreachable after the scan; kept as a guard
        raise BoundedInputError(f"must be nested at most {max_depth} levels deep") from None
    except UnicodeDecodeError as exc:
        raise BoundedInputError(f"must be UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BoundedInputError(
            f"must be valid JSON ({exc.msg})", line=exc.lineno, column=exc.colno
        ) from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise BoundedInputError(f"must be valid JSON ({_clip(str(exc))})") from None
    _check_strings(value)
    return value


# ---- shared --------------------------------------------------------------------------------


def _check_strings(data: Any, path: str = "") -> None:
    """Refuse strings (values and keys) that are not valid Unicode text (lone surrogates)."""
    stack = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            _check_text(where, value)
        elif isinstance(value, dict):
            for key, item in value.items():
                key_text = str(key)
                if isinstance(key, str):
                    _check_text(where or "body", key)
                stack.append((f"{where}.{key_text}" if where else key_text, item))
        elif isinstance(value, list):
            stack.extend((f"{where}.{i}" if where else str(i), v) for i, v in enumerate(value))


def _check_text(where: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BoundedInputError(
            f"must be valid Unicode text, got a lone surrogate {text[exc.start]!a} at "
            f"character {exc.start}",
            field=where or "body",
        ) from None


def _clip(text: str, limit: int = PREVIEW_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def preview(value: Any, *, limit: int = PREVIEW_CHARS) -> Any:
    """``value`` as an error message may quote it: always JSON-serializable and short.

    Non-finite floats become text (``"NaN"``, ``"Infinity"``, ``"-Infinity"``), text that is not
    valid Unicode is escaped, and a string or container longer than ``limit`` characters (as
    JSON) becomes its first ``limit`` characters followed by ``… (N characters)``.
    """
    if value is None or isinstance(value, bool | int):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
            digits = math.floor(abs(value).bit_length() * math.log10(2)) + 1  # about
            return f"an integer of about {digits} digits"
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, str):
        text = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return _clip(text, limit)
    if isinstance(value, dict | list | tuple):
        text = json.dumps(_plain(value, limit), default=str, ensure_ascii=False)
        if len(text) <= limit:
            return _plain(value, limit)
        return _clip(text, limit)
    return _clip(str(value).encode("utf-8", "backslashreplace").decode("utf-8"), limit)


def _plain(value: Any, limit: int, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` (depth and width capped so that it stays cheap)."""
    if depth > 4:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())[:limit]
        return {str(preview(k, limit=limit)): _plain(v, limit, depth + 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [_plain(v, limit, depth + 1) for v in list(value)[:limit]]
    return preview(value, limit=limit)
