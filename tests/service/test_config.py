"""Settings, the loopback rule, the Ray token lookup, the job entrypoint and the API process's
configuration at its entry points (no processes)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.core.config import Settings, is_loopback
from service.jobs import driver_entrypoint, resolve_ray_token

TOKEN = "a-token-of-24-characters"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("HPROBUST_", "RAY_AUTH")):
            monkeypatch.delenv(key)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    assert Settings(host=host).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.7", "example.org"])
def test_a_public_host_needs_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ValidationError) as info:
        Settings(host=host)
    text = str(info.value)
    assert "host must be a loopback address unless HPROBUST_API_TOKEN is set" in text
    assert repr(host) in text
    assert Settings(host=host, api_token=TOKEN).api_token.get_secret_value() == TOKEN


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="api_token must be at least 16 characters"):
        Settings(api_token="short")


@pytest.mark.parametrize(
    "token", [" " * 16, "\t" * 20, "a-token-of-24-chars " + "x" * 4, "\x00" * 16]
)
def test_a_blank_or_spaced_token_is_refused_for_a_public_bind(token: str) -> None:
    """Issue 10: a token of 16 spaces was accepted for a public bind."""
    with pytest.raises(ValidationError, match="api_token must not contain spaces or control"):
        Settings(host="0.0.0.0", api_token=token)


def test_settings_come_from_hprobust_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HPROBUST_MAX_EPOCHS", "7")
    monkeypatch.setenv("HPROBUST_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HPROBUST_MLFLOW_UI_URL", "http://mlflow.lab:5000/")
    settings = Settings()
    assert settings.max_epochs == 7
    assert settings.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert settings.tune_storage == tmp_path.resolve() / "ray_results"
    assert settings.experiment_url("3") == (
        "http://mlflow.lab:5000/#/experiments/3/runs"
        "?workflowType=machine_learning&viewStateShareKey=hprobust"
    )
    monkeypatch.setenv("HPROBUST_MAX_EPOCHS", "0")
    with pytest.raises(ValidationError, match="max_epochs"):
        Settings()


def test_an_external_mlflow_uri_wins() -> None:
    settings = Settings(mlflow_uri="http://mlflow:5000")
    assert settings.tracking_uri == "http://mlflow:5000"
    assert Settings().experiment_url("1") is None  # no UI known: no link


def test_the_drivers_mlflow_uri_defaults_to_the_apis_and_can_differ() -> None:
    from service.main import make_jobs

    same = Settings(mlflow_uri="http://mlflow:5000", ray_address="http://ray-head:8265")
    assert same.driver_tracking_uri == "http://mlflow:5000"
    assert make_jobs(same).tracking_uri == "http://mlflow:5000"
    # A multi-host head on host networking reaches MLflow through its published port.
    apart = same.model_copy(update={"driver_mlflow_uri": "http://127.0.0.1:5000"})
    assert apart.tracking_uri == "http://mlflow:5000"  # the API itself still uses this one
    jobs = make_jobs(apart)
    assert jobs.tracking_uri == "http://127.0.0.1:5000"
    assert Settings().driver_tracking_uri == Settings().tracking_uri  # embedded: SQLite


def test_ray_token_lookup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token here
    assert resolve_ray_token() is None
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    assert resolve_ray_token() == "from-file"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert resolve_ray_token() == "from-env"
    assert resolve_ray_token("explicit") == "explicit"
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home")
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    assert resolve_ray_token() == "from-home"


def test_driver_entrypoint_quotes_paths() -> None:
    command = driver_entrypoint(
        "s20261125-031500-a1b2c3",
        tracking_uri="sqlite:////data dir/mlflow.db",
        storage=Path("/data dir/ray_results"),
        data_dir="/data dir/datasets",
        resume=True,
    )
    assert shlex.split(command) == [
        sys.executable,
        "-m",
        "study.driver",
        "--study-id",
        "s20261125-031500-a1b2c3",
        "--tracking-uri",
        "sqlite:////data dir/mlflow.db",
        "--storage",
        "/data dir/ray_results",
        "--data-dir",
        "/data dir/datasets",
        "--resume",
    ]
    assert "--resume" not in driver_entrypoint(
        "s20261125-031500-a1b2c3", tracking_uri="x", storage="y", data_dir="z", python="python"
    )


MLFLOW_HTTP = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)


@pytest.fixture
def no_mlflow_http_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of MLflow's HTTP client variables set; whatever a test sets is undone after."""
    for key in MLFLOW_HTTP:
        monkeypatch.setenv(key, "x")  # recorded as absent before: removed again at the end
        monkeypatch.delenv(key)


@pytest.mark.usefixtures("no_mlflow_http_env")
def test_the_store_and_the_app_leave_the_environment_alone(tmp_path: Path) -> None:
    """Making the API's store and app sets no MLflow variable in the process (tests and
    embedders call them; only the API process's entry points configure it)."""
    import os

    from service.main import create_app, make_store

    settings = Settings(data_dir=tmp_path, mlflow_uri="http://127.0.0.1:9")
    make_store(settings)
    create_app(settings)
    assert {key: os.environ.get(key) for key in MLFLOW_HTTP} == dict.fromkeys(MLFLOW_HTTP)


def test_configure_api_process_fills_only_what_is_unset() -> None:
    from service.main import API_MLFLOW_ENV, configure_api_process

    environ = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "60", "OTHER": "1"}
    configure_api_process(environ)
    assert environ == {**API_MLFLOW_ENV, "MLFLOW_HTTP_REQUEST_TIMEOUT": "60", "OTHER": "1"}
    assert set(API_MLFLOW_ENV) == set(MLFLOW_HTTP)
    assert int(API_MLFLOW_ENV["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) <= 2  # fails fast: a 503


@pytest.mark.usefixtures("no_mlflow_http_env")
def test_the_uvicorn_factory_configures_its_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os

    from service.main import API_MLFLOW_ENV, app_from_env

    monkeypatch.setenv("HPROBUST_DATA_DIR", str(tmp_path))
    app = app_from_env()
    assert {key: os.environ.get(key) for key in MLFLOW_HTTP} == API_MLFLOW_ENV
    assert app.state.settings.data_dir == tmp_path
