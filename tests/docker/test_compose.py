"""Static checks of the GPU-host deployment: the Compose specification's JSON schema, and
the security rules (nothing that runs code is open to the network, secrets from .env)."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from tests.docker import compose

ROOT = compose.ROOT
FULL_ENV = {
    "RAY_AUTH_TOKEN": "ray-token",
    "POSTGRES_PASSWORD": "pg-password",
    "HPROBUST_API_TOKEN": "api-token",
    "HPROBUST_SECRET": "s" * 32,
    "MLFLOW_WRITER_PASSWORD": "writer-password",
    "MLFLOW_FLASK_SECRET_KEY": "flask-secret",
    "HPROBUST_MLFLOW_READER_PASSWORD": "reader-password",
    "HEAD_IP": "10.0.0.1",
    "RAY_HEAD_IP": "10.0.0.1",
    "NODE_IP": "10.0.0.2",
}


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    # The Compose specification's schema, as vendored by check-jsonschema (a dev dependency).
    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    ).read_text()
    return json.loads(text)


@pytest.fixture(scope="module")
def validator(compose_schema: dict) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(compose_schema)
    cls.check_schema(compose_schema)
    return cls(compose_schema)


@pytest.mark.parametrize("path", compose.COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_files_follow_the_compose_spec(path: Path, validator) -> None:
    errors = sorted(validator.iter_errors(compose.load(path)), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_schema_check_can_fail(validator) -> None:
    doc = compose.load()
    broken = copy.deepcopy(doc)
    broken["services"]["ray-head"]["healthcheck"]["intervall"] = "5s"
    assert list(validator.iter_errors(broken))
    broken = copy.deepcopy(doc)
    broken["services"]["api"]["depends_on"]["mlflow"]["condition"] = "service_happy"
    assert list(validator.iter_errors(broken))


def test_services_and_start_order() -> None:
    services = compose.load()["services"]
    assert set(services) == {"postgres", "mlflow", "ray-head", "ray-worker", "api"}
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no healthcheck"
    healthy = {
        name: {
            dep
            for dep, cond in (svc.get("depends_on") or {}).items()
            if cond.get("condition") == "service_healthy"
        }
        for name, svc in services.items()
    }
    assert healthy["mlflow"] == {"postgres"}
    assert healthy["ray-worker"] == {"ray-head"}
    assert healthy["api"] == {"mlflow", "ray-head"}


def _published(svc: dict) -> list[str]:
    return [str(p) for p in svc.get("ports", [])]


def test_nothing_that_runs_code_is_published() -> None:
    services = compose.interpolate(compose.load()["services"], FULL_ENV)
    # Ray (GCS, dashboard / Jobs API, client) and PostgreSQL are never published.
    for name in ("ray-head", "ray-worker", "postgres"):
        assert not _published(services[name]), f"{name} publishes {services[name]['ports']}"
        assert "expose" not in services[name]
    # The MLflow UI is published on loopback only (reach it through an SSH tunnel).
    (mlflow_port,) = _published(services["mlflow"])
    assert mlflow_port.startswith("127.0.0.1:"), mlflow_port
    # The API is the one public port, and it cannot start without its token.
    assert [p.split(":")[-1] for p in _published(services["api"])] == ["8000"]
    with pytest.raises(compose.MissingVariable, match="HPROBUST_API_TOKEN"):
        compose.service("api", {k: v for k, v in FULL_ENV.items() if k != "HPROBUST_API_TOKEN"})


def test_the_mlflow_ui_needs_an_account_and_the_service_holds_the_writer() -> None:
    """Issue 21, Q4/Q5: compose's MLflow runs MLflow's basic-auth app (anonymous requests get
    401, the reader 403 on changes: tests/service/test_mlflow_login.py shows it on a real
    server), its admin from .env; the API and the study drivers (on the head) write as that
    admin; the API sets up the reader. Each secret is required."""
    mlflow = compose.service("mlflow", FULL_ENV)
    command = mlflow["command"]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    env = compose.environment(mlflow)
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"] == "hprobust"
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == FULL_ENV["MLFLOW_WRITER_PASSWORD"]
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == FULL_ENV["MLFLOW_FLASK_SECRET_KEY"]
    assert "mlflow-auth:/mlauth" in mlflow["volumes"]  # the user store outlives the container
    dockerfile = (ROOT / "docker" / "mlflow.Dockerfile").read_text()
    assert '"mlflow[auth]==' in dockerfile and "default_permission = READ" in dockerfile
    assert "ENV MLFLOW_AUTH_CONFIG_PATH=/etc/mlflow/basic_auth.ini" in dockerfile
    assert "database_uri = sqlite:////mlauth/basic_auth.db" in dockerfile
    for name in ("api", "ray-head"):  # the writers: the API and the study drivers
        writer = compose.environment(compose.service(name, FULL_ENV))
        assert writer["MLFLOW_TRACKING_USERNAME"] == env["MLFLOW_AUTH_ADMIN_USERNAME"]
        assert writer["MLFLOW_TRACKING_PASSWORD"] == FULL_ENV["MLFLOW_WRITER_PASSWORD"]
    worker = compose.environment(compose.service("ray-worker", FULL_ENV))
    assert "MLFLOW_TRACKING_PASSWORD" not in worker  # trials never talk to MLflow
    api = compose.environment(compose.service("api", FULL_ENV))
    assert api["HPROBUST_MLFLOW_READER_PASSWORD"] == FULL_ENV["HPROBUST_MLFLOW_READER_PASSWORD"]
    for name, key in (
        ("mlflow", "MLFLOW_WRITER_PASSWORD"),
        ("mlflow", "MLFLOW_FLASK_SECRET_KEY"),
        ("api", "MLFLOW_WRITER_PASSWORD"),
        ("ray-head", "MLFLOW_WRITER_PASSWORD"),
        ("api", "HPROBUST_MLFLOW_READER_PASSWORD"),
    ):
        with pytest.raises(compose.MissingVariable, match=key):
            compose.service(name, {k: v for k, v in FULL_ENV.items() if k != key})


def test_the_api_answers_only_the_names_it_is_published_under() -> None:
    """Issue 21, B3: the API refuses another Host (DNS rebinding); compose names the loopback
    ones unless .env lists the host's own (HPROBUST_ALLOWED_HOSTS), and the names parse."""
    from service.core.config import Settings

    env = compose.environment(compose.service("api", FULL_ENV))
    assert env["HPROBUST_ALLOWED_HOSTS"] == "localhost,127.0.0.1,[::1]"
    given = compose.service("api", {**FULL_ENV, "HPROBUST_ALLOWED_HOSTS": "gpu.lab:8000"})
    assert compose.environment(given)["HPROBUST_ALLOWED_HOSTS"] == "gpu.lab:8000"
    settings = Settings(
        allowed_hosts=env["HPROBUST_ALLOWED_HOSTS"], host="0.0.0.0", api_token="t" * 16
    )
    assert settings.served_hosts() == ["localhost", "127.0.0.1", "[::1]"]


@pytest.mark.parametrize("name", ["ray-head", "ray-worker", "api"])
def test_ray_token_authentication_is_on(name: str) -> None:
    env = compose.environment(compose.service(name, FULL_ENV))
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN"] == FULL_ENV["RAY_AUTH_TOKEN"]
    with pytest.raises(compose.MissingVariable, match="RAY_AUTH_TOKEN"):
        compose.service(name, {k: v for k, v in FULL_ENV.items() if k != "RAY_AUTH_TOKEN"})


def test_gpu_workers_reserve_gpus_and_join_the_head() -> None:
    worker = compose.service("ray-worker", FULL_ENV)
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "--address=ray-head:6379" in worker["command"]
    head = compose.service("ray-head", FULL_ENV)
    assert "--head" in head["command"] and "--num-gpus=0" in head["command"]
    # Datasets and Ray Tune's results live on one volume shared by the head, workers and API.
    for svc in (worker, head, compose.service("api", FULL_ENV)):
        assert "hprobust-data:/data" in svc["volumes"]


def test_remote_worker_file_joins_with_the_same_token() -> None:
    path = ROOT / "docker" / "compose.worker.yml"
    worker = compose.service("ray-worker", FULL_ENV, path)
    assert f"--address={FULL_ENV['RAY_HEAD_IP']}:6379" in worker["command"]
    assert compose.environment(worker)["RAY_AUTH_MODE"] == "token"
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_images_are_pinned_non_root_and_healthy(path: Path) -> None:
    text = path.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0"), f"{path.name} runs as root"
    assert re.search(r"^HEALTHCHECK\s", text, flags=re.M)
    for image in re.findall(r"^ARG PYTHON_IMAGE=(\S+)", text, flags=re.M):
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", image), image
    # Every package pip installs by name is pinned (the project itself pins in pyproject.toml).
    instructions = re.sub(r"^\s*#.*\n", "", text, flags=re.M).replace("\\\n", " ")
    runs = re.findall(r"^RUN (.+)$", instructions, flags=re.M)
    assert runs
    for line in re.findall(r"pip install ([^\n&;]+)", "\n".join(runs)):
        line = re.sub(r"\$\{\w+:\+[^}]*\}", "", line)  # ${ARG:+--index-url "$ARG"}
        args = [a for a in line.split() if not a.startswith("-") and not a.startswith("http")]
        names = [a for a in args if a not in (".", "/tmp/requirements.txt")]
        assert all("==" in a for a in names), f"{path.name}: unpinned pip install {line!r}"
    # No secret is baked into an image.
    assert not re.search(r"^(ENV|ARG)\s+\S*(TOKEN|PASSWORD|SECRET)", text, flags=re.M | re.I)


def test_every_compose_variable_is_documented_in_env_example() -> None:
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    used: set[str] = set()
    for path in compose.COMPOSE_FILES:
        used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", path.read_text()))
    assert used - documented == set()


def _setting_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_env_example_lists_every_service_setting_with_its_default() -> None:
    from service.core.config import Settings

    text = (ROOT / ".env.example").read_text()
    listed = dict(re.findall(r"^#?\s*(HPROBUST_[A-Z0-9_]+)=(.*)$", text, flags=re.M))
    for name, field in Settings.model_fields.items():
        key = f"HPROBUST_{name.upper()}"
        assert key in listed, f"{key} is not in .env.example"
        if field.default is not None and listed[key]:
            assert listed[key].lower() == _setting_text(field.default).lower(), key
    # The compose file's fallbacks for the limits and tuning agree with the service's defaults.
    tuning = ("max_", "cache", "poll", "protect", "read")
    for key, value in compose.environment(compose.service("api", FULL_ENV)).items():
        name = key.removeprefix("HPROBUST_").lower()
        if key.startswith("HPROBUST_") and name.startswith(tuning):
            assert value.lower() == _setting_text(Settings.model_fields[name].default), key


def _merged(name: str, override: str) -> dict:
    """``name`` of the main file with ``docker/<override>`` applied the way both Compose v2
    and docker-compose 1.29 merge these keys (mappings merge, scalars and lists replace)."""

    def merge(base, over):
        if isinstance(base, dict) and isinstance(over, dict):
            return {k: merge(base.get(k), over[k]) if k in base else over[k] for k in over} | {
                k: v for k, v in base.items() if k not in over
            }
        return over

    base = compose.service(name, FULL_ENV) if name in compose.load()["services"] else {}
    over = compose.service(name, FULL_ENV, ROOT / "docker" / override)
    return merge(base, over)


def test_the_cpu_override_replaces_the_gpu_worker_by_its_cpu_twin() -> None:
    gpu = _merged("ray-worker", "compose.cpu.yml")
    assert gpu["deploy"]["replicas"] == 0  # no container that asks Docker for GPUs
    cpu = _merged("ray-cpu-worker", "compose.cpu.yml")
    assert "deploy" not in cpu and "network_mode" not in cpu
    head = compose.service("ray-head", FULL_ENV)
    for key in ("image", "command", "environment", "volumes", "depends_on", "healthcheck"):
        assert cpu[key] == gpu[key], key  # the same worker, only without the reservation
    assert head["image"] == cpu["image"]
    # Every service that builds the Ray image builds it the same way (one tag, one image).
    builds = [_merged(n, "compose.cpu.yml")["build"] for n in ("ray-head", "ray-worker")]
    assert builds[0] == builds[1] == {**cpu["build"], "context": "."}
    assert builds[0]["args"]["TORCH_VARIANT"] == "+cpu"


def test_the_multihost_override_moves_ray_to_the_host_network() -> None:
    env = {**FULL_ENV, "MLFLOW_UI_PORT": "5001"}
    path = ROOT / "docker" / "compose.multihost.yml"
    for name in ("ray-head", "ray-worker"):
        svc = compose.service(name, env, path)
        assert svc["network_mode"] == "host"
        assert "--dashboard-agent-listen-port=0" in svc["command"]  # two nodes, one network
        assert env["HEAD_IP"] in " ".join(svc["healthcheck"]["test"])
    head = compose.service("ray-head", env, path)["command"]
    assert f"--node-ip-address={env['HEAD_IP']}" in head and "--port=6379" in head
    assert f"--dashboard-host={env['HEAD_IP']}" in head
    worker = compose.service("ray-worker", env, path)["command"]
    assert f"--address={env['HEAD_IP']}:6379" in worker
    api = compose.environment(compose.service("api", env, path))
    assert api["HPROBUST_RAY_ADDRESS"] == f"http://{env['HEAD_IP']}:8265"
    # The drivers (on the head, outside the compose network) reach MLflow on loopback.
    assert api["HPROBUST_DRIVER_MLFLOW_URI"] == "http://127.0.0.1:5001"
    # Compose 1.29 cannot drop `networks` in an override: the main file names none.
    for svc in compose.load()["services"].values():
        assert "networks" not in svc and "network_mode" not in svc
    assert "name" not in compose.load()  # docker-compose 1.29 refuses a top-level name


def test_the_worker_file_has_a_gpu_worker_and_a_cpu_twin_on_the_host_network() -> None:
    path = ROOT / "docker" / "compose.worker.yml"
    gpu = compose.service("ray-worker", FULL_ENV, path)
    cpu = compose.service("ray-cpu-worker", FULL_ENV, path)
    assert gpu["network_mode"] == cpu["network_mode"] == "host"
    assert cpu["profiles"] == ["cpu"] and "deploy" not in cpu
    assert {k: v for k, v in gpu.items() if k != "deploy"} == {
        k: v for k, v in cpu.items() if k != "profiles"
    }
    assert "--address=10.0.0.1:6379" in gpu["command"]
    with pytest.raises(compose.MissingVariable, match="RAY_HEAD_IP"):
        compose.service(
            "ray-worker", {k: v for k, v in FULL_ENV.items() if k != "RAY_HEAD_IP"}, path
        )


def test_the_api_image_shares_the_ray_image_layers() -> None:
    def shared(name: str) -> str:
        text = (ROOT / "docker" / name).read_text()
        return text[text.index("ARG PYTHON_IMAGE") : text.index('VOLUME ["/data"]')]

    assert shared("api.Dockerfile") == shared("ray.Dockerfile")


def test_the_build_context_holds_only_the_sources() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # everything is left out first (.venv, .env, .git, data) ...
    allowed = {line[1:] for line in lines if line.startswith("!")}
    # ... then only what the Dockerfiles COPY comes back.
    copied = set()
    for path in DOCKERFILES:
        for src in re.findall(r"^COPY\s+(.+?)\s+\S+$", path.read_text(), flags=re.M):
            copied |= set(src.split())
    assert copied <= allowed | {"docker"}, copied - allowed
    assert not {".env", ".venv", ".git", "hprobust-data"} & allowed
