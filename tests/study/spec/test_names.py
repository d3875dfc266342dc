"""Names and user text (issue 21, item 5): identifiers matched whole, no control, bidi or
zero-width character anywhere in a spec, and names written into MLflow's Markdown description
as text, never as a link or an image. Probes B4, Q8 and Q9 of the issue's adversarial pass."""

from __future__ import annotations

import copy
import doctest
import re

import pytest
from markdown_it import MarkdownIt

import study.text
from study.errors import ConfigError, SpecError
from study.records.formats import study_note
from study.records.ids import check_study_id, new_study_id
from study.spec.study_spec import ArmSpec, parse_spec, unsafe_text
from study.text import markdown_code, shown, unsafe_char

GOOD = {
    "name": "names",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["normal"]},
    "trials_per_arm": 2,
}

#: The characters of probe Q9 and their kin: C0, DEL, C1, bidi overrides and isolates,
#: marks, zero-width characters, line and paragraph separators.
UNSAFE = [
    "\n",
    "\t",
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9b",
    "\u202a",
    "\u202e",
    "\u2066",
    "\u2069",
    "\u200b",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u2060",
    "\ufeff",
    "\u061c",
    "\u2028",
    "\u2029",
]


def refused(data: dict) -> dict:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    (problem,) = info.value.problems
    return problem


def test_doctests():
    assert doctest.testmod(study.text).failed == 0


def test_an_arm_name_with_a_trailing_newline_is_refused():
    """Probe B4: arm ``"sgd\\n"`` beside ``sgd`` was accepted (``^...$`` with ``re.match``
    matches before a trailing newline); every trial ran, then the study failed at the end on
    an invalid MLflow metric name. Now the spec refuses it, naming the arm."""
    data = copy.deepcopy(GOOD)
    data["arms"].append({"name": "sgd\n", "optimizer": "sgd"})
    problem = refused(data)
    assert problem["field"] == "arms.1.name"
    assert "U+000A" in problem["rule"] and problem["value"] == "sgd\\n"
    # The name rule alone (an arm validated by itself) matches the whole name too.
    with pytest.raises(ValueError, match="must be 1-64 letters"):
        ArmSpec.model_validate({"name": "sgd\n", "optimizer": "sgd"})
    with pytest.raises(ValueError, match="must be 1-64 letters"):
        ArmSpec.model_validate({"name": "sgd x", "optimizer": "sgd"})
    assert ArmSpec.model_validate({"name": "sgd_1.b-2", "optimizer": "sgd"}).name == "sgd_1.b-2"


def test_study_ids_and_devices_are_matched_whole():
    """Item 5: every identifier is matched with ``fullmatch``."""
    study_id = new_study_id()
    assert check_study_id(study_id) == study_id
    with pytest.raises(ConfigError):
        check_study_id(study_id + "\n")
    from study.spec.trial_config import TrialConfig

    config = parse_spec(GOOD).trial_config("sgd", lr=0.1, init="normal", seed=0)
    data = config.model_dump(mode="json")
    assert TrialConfig.model_validate({**data, "device": "cpu"}).device == "cpu"
    with pytest.raises(ValueError, match="device"):
        TrialConfig.model_validate({**data, "device": "cpu\n"})


@pytest.mark.parametrize("char", UNSAFE, ids=lambda c: f"U+{ord(c):04X}")
def test_unsafe_characters_are_refused_in_the_name(char):
    """Probe Q9: names with U+202E (right-to-left override), zero-width and C1 control
    characters were accepted (and printed raw by the CLI). Now refused, naming the field,
    the character and where it is, with the value escaped (never echoed raw)."""
    problem = refused({**GOOD, "name": f"ab{char}cd"})
    assert problem["field"] == "name"
    assert f"U+{ord(char):04X}" in problem["rule"] and "at index 2" in problem["rule"]
    assert char not in problem["value"] and problem["value"] == shown(f"ab{char}cd")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("arms", 0, "name"), "arms.0.name"),
        (("search", "init", 0), "search.init.0"),
        (("dataset",), "dataset"),
        (("model", "activation"), "model.activation"),
        (("schedule",), "schedule"),
    ],
)
def test_unsafe_characters_are_refused_in_every_string_of_the_spec(path, field):
    """Q9, everywhere: any string of the spec, at any depth, not only the name."""
    data = copy.deepcopy(GOOD)
    data.setdefault("schedule", "cosine")
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = str(node.get(path[-1], "relu") if isinstance(node, dict) else node[path[-1]])
    node[path[-1]] += "\u202e"
    problem = refused(data)
    assert problem["field"] == field and "U+202E" in problem["rule"]


def test_unsafe_characters_are_refused_in_keys():
    """A key is user text too: an unknown key with a zero-width space is named escaped."""
    problem = refused({**GOOD, "epochs\u200b": 3})
    assert problem["field"] == "epochs\\u200b"
    assert problem["rule"].startswith("(a key) must not contain") and "U+200B" in problem["rule"]
    data = copy.deepcopy(GOOD)
    data["model"]["hid\u2066den"] = [8]
    assert refused(data)["field"] == "model.hid\\u2066den"


def test_ordinary_unicode_is_accepted():
    """Letters of any script, emoji and symbols stay allowed in free text."""
    name = "Étude — 学習率 × init 🧪 (τ=0.02)"
    assert parse_spec({**GOOD, "name": name}).name == name
    assert unsafe_char(name) is None
    assert unsafe_text({"a": [name, {"b": "ok"}]}) is None


EVIL_NAME = "[click](https://evil.example/x) ![pixel](https://evil.example/p.png) <b>x</b> `y`"


def _html(note: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(note)


def test_a_name_with_markdown_is_text_in_the_mlflow_description():
    """Probe Q8: a study name with Markdown put a working external link and a remote image
    into the MLflow run description. Now the name is a code span: rendered, the description
    has no link to it and no image, and shows the name as typed."""
    sid = new_study_id()
    url = f"http://127.0.0.1:8000/studies/{sid}/report"
    html = _html(study_note(sid, EVIL_NAME, url))
    assert "evil.example" in html  # shown ...
    assert not re.search(r"<a [^>]*evil", html)  # ... but not a link
    assert "<img" not in html and "<b>" not in html
    assert f'<a href="{url}">' in html  # the service's own link stays a link
    unlinked = _html(study_note(sid, "www.evil.example http://evil.example", None))
    assert "<a " not in unlinked


def test_a_report_url_that_is_not_plain_is_not_a_link():
    """The report URL comes from the request's host: one that could break out of the link
    (a parenthesis, a space, a bracket) is written as code, not as a link."""
    sid = new_study_id()
    bad = "http://x)![p](https://evil.example/p.png)/report"
    html = _html(study_note(sid, "n", bad))
    assert "<img" not in html and "<a " not in html


def test_the_recorded_description_has_no_live_markdown(mlflow_sqlite_uri):
    """Q8 through the real store: the study run's ``mlflow.note.content`` as MLflow keeps it,
    at creation and after the results (when the headline table is added)."""
    from study.records.store import StudyStore

    store = StudyStore(mlflow_sqlite_uri)
    sid = new_study_id()
    spec = parse_spec({**GOOD, "name": EVIL_NAME})
    url = f"http://127.0.0.1:8000/studies/{sid}/report"
    store.create_study(spec, study_id=sid, report_url=url)
    run_id = store.study_run_id(sid)
    for stage in ("created", "finished"):
        note = store.client.get_run(run_id).data.tags["mlflow.note.content"]
        html = _html(note)
        assert "<img" not in html and not re.search(r"<a [^>]*evil", html), stage
        assert "[click](https://evil.example/x)" in html  # the name as typed
        store.store_results(sid, {"arms": {"sgd": {"best": 0.5}}}, [])


@pytest.mark.parametrize(
    "text",
    ["plain", "a`b", "``", "` x `", "x|y", "[a](b)", "line\nbreak", "\u202e"],
)
def test_markdown_code_is_one_literal_code_span(text):
    html = _html(markdown_code(text, in_table=True))
    assert html.count("<code>") == 1 and "<a " not in html
    assert "\n" not in markdown_code(text)
