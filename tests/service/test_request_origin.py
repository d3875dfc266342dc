"""Requests from elsewhere (issue 21, item 4; probe B3), on the real app under a real uvicorn
(in this process, on a free port) with a real MLflow SQLite store and no Ray (the Jobs API it
names does not answer: nothing here needs a job).

B3 (before): on the default ``hprobust serve`` (no token), a page on another origin created
studies with a ``no-cors`` ``text/plain`` fetch and with a form POST (JSON was accepted under
any Content-Type), and a request with ``Host: evil.example`` (DNS rebinding) got 200. The
browser test (a second local HTTP server serving the attacking page, real Chromium) is
``test_a_page_of_another_origin_cannot_create_a_study``."""

from __future__ import annotations

import html
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from service.stack import free_port
from tests.service.conftest import tiny_spec


class LightApi:
    """``create_app`` under uvicorn in a thread; its store is ``self.store``."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        import uvicorn

        from service.core.config import Settings
        from service.jobs import StudyJobs
        from service.main import create_app
        from study.records.store import StudyStore, sqlite_uri

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = Settings(data_dir=tmp_path, port=self.port, **settings)
        self.store = StudyStore(sqlite_uri(tmp_path), secret=b"q" * 40)
        jobs = StudyJobs(
            f"http://127.0.0.1:{free_port()}",  # no Ray: nothing listens there
            tracking_uri=self.store.tracking_uri,
            storage=tmp_path / "ray_results",
            data_dir=tmp_path / "datasets",
        )
        app = create_app(self.settings, store=self.store, jobs=jobs, run_scheduler=False)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LightApi:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def studies(self) -> list[str]:
        return sorted(s.id for s in self.store.states())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LightApi]:
    with LightApi(tmp_path_factory.mktemp("origin")) as light:
        yield light


def post(api: LightApi, body: bytes, content_type: str | None, **headers: str) -> httpx.Response:
    if content_type is not None:
        headers["Content-Type"] = content_type
    return httpx.post(f"{api.url}/studies", content=body, headers=headers, timeout=60)


SPEC_JSON = json.dumps(tiny_spec(name="origin")).encode()
SPEC_YAML = yaml.safe_dump(tiny_spec(name="origin")).encode()


def test_b3_a_change_in_another_content_type_is_415_and_creates_nothing(api: LightApi) -> None:
    """B3: the bodies a page of another origin can send without a preflight (text/plain,
    a form), and a body without any type, are refused before they are read."""
    before = api.studies()
    for content_type in (
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        None,
    ):
        r = post(api, SPEC_JSON, content_type)
        assert r.status_code == 415, (content_type, r.text)
        detail = r.json()["detail"]
        assert detail.startswith(
            "Content-Type must be one of application/json, application/yaml, "
            "application/x-yaml, text/yaml, text/x-yaml"
        ), detail
        assert (repr(content_type) if content_type else "got none") in detail
    r = httpx.post(f"{api.url}/studies/s20990101-000000-abcdef/cancel", content=b"x")
    assert r.status_code == 415  # every change, not only the creation
    assert api.studies() == before


def test_json_and_yaml_still_create_studies(api: LightApi) -> None:
    before = set(api.studies())
    created = []
    for body, content_type in (
        (SPEC_JSON, "application/json"),
        (SPEC_JSON, "Application/JSON; charset=utf-8"),
        (SPEC_YAML, "application/yaml"),
        (SPEC_YAML, "application/x-yaml"),
        (SPEC_YAML, "text/yaml"),
    ):
        r = post(api, body, content_type)
        assert r.status_code == 202, (content_type, r.text)
        created.append(r.json()["id"])
    assert set(api.studies()) == before | set(created)


def test_b3_a_host_that_is_not_served_is_421(api: LightApi) -> None:
    """B3: DNS rebinding. A page whose own name was pointed at 127.0.0.1 sends its name as
    Host: refused for reads and changes; the served names pass, with any port."""
    before = api.studies()
    for host in ("evil.example", f"evil.example:{api.port}", "127.0.0.1.evil.example", ""):
        r = httpx.get(f"{api.url}/studies", headers={"Host": host})
        assert r.status_code == 421, (host, r.text)
        assert "HPROBUST_ALLOWED_HOSTS" in r.json()["detail"]
        r = post(api, SPEC_JSON, "application/json", Host=host)
        assert r.status_code == 421, (host, r.text)
    assert api.studies() == before
    for host in (f"127.0.0.1:{api.port}", f"LOCALHOST:{api.port}", f"[::1]:{api.port}"):
        assert httpx.get(f"{api.url}/studies", headers={"Host": host}).status_code == 200
    # a container's health check may name the container
    assert httpx.get(f"{api.url}/healthz", headers={"Host": "api:8000"}).status_code == 200


def test_b3_a_change_from_a_page_of_another_origin_is_403(api: LightApi) -> None:
    """A browser names the page's origin on every cross-site POST, even one with no body
    (cancel, resume), which needs no content type: refused; the service's own pages' origin,
    and clients that send none (CLI, curl), pass."""
    study_id = post(api, SPEC_JSON, "application/json").json()["id"]
    for origin in ("http://evil.example", f"http://evil.example:{api.port}", "null"):
        r = httpx.post(f"{api.url}/studies/{study_id}/cancel", headers={"Origin": origin})
        assert r.status_code == 403, (origin, r.text)
        assert "another origin" in r.json()["detail"]
        r = post(api, SPEC_JSON, "application/json", Origin=origin)
        assert r.status_code == 403
    assert api.store.state(study_id).status == "queued"
    r = post(api, SPEC_JSON, "application/json", Origin=f"http://127.0.0.1:{api.port}")
    assert r.status_code == 202


def test_hprobust_submit_still_creates_a_study(api: LightApi) -> None:
    """The CLI's client sends JSON (service/client.py): accepted as before."""
    before = set(api.studies())
    spec = Path(api.settings.data_dir) / "spec.yaml"
    spec.write_text(SPEC_YAML.decode())
    hprobust = str(Path(sys.executable).parent / "hprobust")
    out = subprocess.run(
        [hprobust, "submit", str(spec), "--url", api.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert " queued" in out.stdout
    assert len(set(api.studies()) - before) == 1


def test_allowed_hosts_setting(tmp_path: Path, monkeypatch) -> None:
    from pydantic import ValidationError

    from service.core.config import Settings

    monkeypatch.delenv("HPROBUST_ALLOWED_HOSTS", raising=False)
    assert Settings(data_dir=tmp_path).served_hosts() == ["127.0.0.1", "localhost", "[::1]"]
    given = Settings(data_dir=tmp_path, allowed_hosts="gpu.lab:8000, Api ,*")
    assert given.served_hosts() == ["gpu.lab:8000", "Api", "*"]
    wide = Settings(data_dir=tmp_path, host="0.0.0.0", api_token="t" * 20).served_hosts()
    import socket

    assert {"127.0.0.1", "localhost", socket.gethostname().lower()} <= set(wide)
    with pytest.raises(ValidationError, match="allowed_hosts must be comma-separated"):
        Settings(data_dir=tmp_path, allowed_hosts="gpu.lab:http")


ATTACK = """<!doctype html><html><body>
<iframe name="sink" id="sink"></iframe>
<form id="form" method="post" action="{api}/studies" enctype="text/plain" target="sink">
<input name="{form_name}" value="{form_value}"></form>
<script>
window.fetchDone = fetch("{api}/studies", {{
  method: "POST", mode: "no-cors", body: {spec}
}}).then(() => "sent", e => "error " + e);
document.getElementById("sink").onload = () => {{ window.formDone = true; }};
document.getElementById("form").submit();
</script></body></html>
"""


@pytest.mark.slow
def test_a_page_of_another_origin_cannot_create_a_study(api: LightApi, tmp_path: Path) -> None:
    """B3 in Chromium: a page served by a second local HTTP server (another port: another
    origin) sends the spec to the API with a ``no-cors`` ``text/plain`` fetch and a form POST;
    no study is created. And a page whose name resolves to 127.0.0.1 (DNS rebinding, played
    with Chromium's host resolver rules) is refused at the API's own port."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from playwright import sync_api as playwright

    page_dir = tmp_path / "attacker"
    page_dir.mkdir()
    spec = json.dumps(json.dumps(tiny_spec(name="fetch-attack")))
    # a text/plain form sends "<name>=<value>": the spec as JSON, its "=" inside the name
    form = json.dumps(
        {k: v for k, v in tiny_spec().items() if k != "name"} | {"name": "form attack"}
    )
    assert form.endswith('"form attack"}')
    page = ATTACK.format(
        api=api.url,
        spec=spec,
        form_name=html.escape(form[:-2], quote=True),
        form_value=html.escape('"}', quote=True),
    )
    (page_dir / "index.html").write_text(page)

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(page_dir), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    attacker = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    before = api.studies()
    answers: list[tuple[str, int]] = []
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--host-resolver-rules=MAP evil.example 127.0.0.1",
                ],
            )
            try:
                page = browser.new_page()
                page.on("response", lambda r: answers.append((r.url, r.request.method, r.status)))
                page.goto(f"http://127.0.0.1:{attacker.server_port}/index.html")
                assert page.evaluate("window.fetchDone") == "sent"  # opaque: sent, unread
                page.wait_for_function("window.formDone === true", timeout=30_000)
                # DNS rebinding: the attacker's name, now resolving to this machine
                rebound = page.goto(f"http://evil.example:{api.port}/studies")
                assert rebound is not None and rebound.status == 421
                assert "is not a name this service is served under" in page.content()
            finally:
                browser.close()
    finally:
        attacker.shutdown()
    assert api.studies() == before  # neither the fetch nor the form created a study
    posts = [
        status for url, method, status in answers if url.startswith(api.url) and method == "POST"
    ]
    assert posts and all(status in (403, 415) for status in posts), answers
