""" "Did you mean ...?" for a mistyped key or name (difflib; no heavy imports)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def did_you_mean(value: Any, choices: Iterable[Any]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` to ``value``, else ``""``.

    >>> did_you_mean("adma", ["sgd", "adam", "adagrad"])
    " (did you mean 'adam'?)"
    >>> did_you_mean("zzz", ["sgd", "adam"])
    ''
    """
    if not isinstance(value, str):
        return ""
    names = [str(c) for c in choices]
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    if not close:  # a different case or separator: "Adam", "weight-decay"
        folded = {n.lower().replace("-", "_"): n for n in names}
        key = value.lower().replace("-", "_")
        close = [folded[key]] if key in folded else []
    return f" (did you mean {close[0]!r}?)" if close and close[0] != value else ""
