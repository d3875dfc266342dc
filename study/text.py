"""User text, made safe where it goes: one rule for every string a user sends, and how such
a string is written into Markdown (MLflow descriptions) and onto a terminal (the CLI).

A user's string (a study name, an arm name, a key of the spec, any string value) must not
carry characters that change how *other* text is shown: control characters (C0, DEL, C1),
format characters (bidi overrides and isolates U+202A-U+202E, U+2066-U+2069, the marks
U+200E/U+200F/U+061C, zero-width U+200B-U+200D, U+2060, U+FEFF, soft hyphen, tags ...), line
and paragraph separators (U+2028, U+2029) and lone surrogates. :func:`unsafe_char` finds
the first one; the spec refuses a string that has one (``study.spec.study_spec``).

    >>> unsafe_char("sgd")
    >>> unsafe_char("ab\\u202ecd")
    (2, 'U+202E RIGHT-TO-LEFT OVERRIDE')
    >>> shown("ab\\u202ecd\\n")
    'ab\\\\u202ecd\\\\n'
    >>> markdown_code("![i](https://e.example/i.png)")
    '`![i](https://e.example/i.png)`'
    >>> markdown_code("a `b`")
    '`` a `b` ``'

Identifiers (arm names, ids, keys) are matched with ``re.fullmatch``: ``$`` also matches
before a trailing newline, so ``^...$`` with ``re.match`` accepts ``"sgd\\n"``.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories refused anywhere in user text: control, format, line and paragraph
#: separators, surrogates.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
#: The rule a string with one of them breaks, as errors word it.
UNSAFE_RULE = "must not contain control, bidi, zero-width or line-separator characters"


def _name(char: str) -> str:
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    if not name and unicodedata.category(char) == "Cc":
        name = "control character"
    return f"{code} {name}".rstrip()


def unsafe_char(text: str) -> tuple[int, str] | None:
    """``(index, "U+XXXX NAME")`` of the first character of ``text`` that user text must not
    contain (see the module doc), or None."""
    for i, char in enumerate(text):
        if char.isascii() and char.isprintable():
            continue
        if unicodedata.category(char) in UNSAFE_CATEGORIES:
            return i, _name(char)
    return None


def unsafe_rule(text: str) -> str | None:
    """The rule ``text`` breaks, naming the first bad character and where it is, or None."""
    found = unsafe_char(text)
    if found is None:
        return None
    index, name = found
    return f"{UNSAFE_RULE} ({name} at index {index})"


def shown(text: str) -> str:
    """``text`` for a terminal or a log line: each character user text must not contain
    written as its escape (``\\n``, ``\\u202e``, ``\\x85``), everything else as it is."""
    if all(c.isascii() and c.isprintable() for c in text):
        return text
    out = []
    for char in text:
        if not (char.isascii() and char.isprintable()) and (
            unicodedata.category(char) in UNSAFE_CATEGORIES
        ):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def markdown_code(text: str, *, in_table: bool = False) -> str:
    """``text`` as a Markdown code span: shown literally by every Markdown renderer (no link,
    image, autolink, mention, emphasis or HTML can start inside one). The fence is one
    backtick longer than the longest run of backticks in ``text``; unsafe characters are
    written as escapes (:func:`shown`), so the span stays on one line. ``in_table``: ``|``
    escaped too (a table cell ends at ``|`` even inside a code span)."""
    body = shown(text)
    if in_table:
        body = body.replace("|", "\\|")
    longest = run = 0
    for char in body:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if body[:1] in ("`", " ") or body[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{body}{pad}{fence}"
