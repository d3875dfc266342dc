"""The service's settings: one :class:`Settings`, read from ``HPROBUST_*`` environment variables.

Embedded defaults (``hprobust serve``): a local Ray head started by the command, MLflow on a
SQLite file under ``data_dir``, the API on 127.0.0.1. Point ``HPROBUST_RAY_ADDRESS`` (a Ray
dashboard URL, e.g. ``http://ray-head:8265``) and ``HPROBUST_MLFLOW_URI`` at an existing
cluster and tracking server to use those instead.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from study.spec.bounds import SizeLimits
from study.spec.model_check import MAX_MODEL_PARAMS

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """True if ``host`` only accepts connections from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Everything the service can be told; each field is ``HPROBUST_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="HPROBUST_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port of the API (0: any free port).")
    data_dir: Path = Field(
        Path("hprobust-data"),
        description="Where the SQLite MLflow store, artifacts, Ray Tune results and datasets live.",
    )
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token required on every mutating request (POST). Required to bind "
        "a non-loopback host.",
    )
    secret: SecretStr | None = Field(
        None,
        description="Signs every study record (HMAC of its id and spec); drivers run only "
        "signed studies. At least 32 characters; the Ray head's drivers need the same "
        "HPROBUST_SECRET in their environment. None: a random secret generated once into "
        "<data_dir>/secret (mode 0600), whose path the drivers are given.",
    )
    protect_reads: bool = Field(
        False,
        description="Also require the token on GET requests (default: reads are open, writes "
        "need the token).",
    )
    ray_address: str | None = Field(
        None,
        description="Ray dashboard (Jobs API) URL of an existing cluster, e.g. "
        "http://127.0.0.1:8265. None: `hprobust serve` starts a local head.",
    )
    ray_auth_token: SecretStr | None = Field(
        None,
        description="Token for a Ray cluster with token authentication. None: Ray's own "
        "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, when present.",
    )
    mlflow_uri: str | None = Field(
        None, description="MLflow tracking URI. None: sqlite:///<data_dir>/mlflow.db."
    )
    driver_mlflow_uri: str | None = Field(
        None,
        description="MLflow tracking URI the study drivers use (they run on the Ray head). "
        "None: the same as mlflow_uri; set it where the head reaches MLflow by another "
        "address than the API does (a multi-host head on host networking).",
    )
    mlflow_ui_url: str | None = Field(
        None, description="Base URL of the MLflow UI, used for experiment links."
    )
    storage_path: Path | None = Field(
        None, description="Ray Tune storage (experiment checkpoints). None: <data_dir>/ray_results."
    )
    dataset_dir: Path | None = Field(
        None, description="Dataset cache passed to the study driver. None: <data_dir>/datasets."
    )
    python: str | None = Field(
        None,
        description="Python interpreter of the Ray Job entrypoint. None: the one running the "
        "service (right for the embedded cluster and for images built from this project).",
    )
    max_trials_per_study: int = Field(2000, ge=1, description="Most trials one study may ask for.")
    max_epochs: int = Field(500, ge=1, description="Most epochs one trial may ask for.")
    max_concurrent_studies: int = Field(
        1, ge=1, description="Studies running at once; the others wait, queued."
    )
    max_body_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        description="Largest request head (request line and headers) accepted (431 above).",
    )
    create_wait_s: float = Field(
        60.0,
        gt=0,
        description="How long a POST /studies waits for its turn to write to the store "
        "(creations take turns); 503, nothing recorded, after it.",
    )
    cpus: int | None = Field(
        None, ge=1, description="CPUs of the embedded Ray head. None: all of this machine's."
    )
    resource_wait_s: float = Field(
        300.0,
        gt=0,
        description="How long a running study's trials may wait for Ray resources with none "
        "running before the study fails saying so (instead of holding the queue).",
    )
    poll_interval_s: float = Field(
        2.0, gt=0, description="How often the scheduler checks queued and running studies."
    )
    warm_driver_s: float = Field(
        900.0,
        ge=0,
        description="While a study slot is free, keep one study driver started ahead (Ray "
        "joined, imports done) for the next study posted, which then starts at once instead "
        "of after a Ray job's start; the driver waits this long for a study, then is "
        "replaced. 0: no warm driver (each study's driver starts when it is submitted).",
    )
    max_attempts: int = Field(
        3,
        ge=0,
        description="Resubmissions of a study whose driver died without an outcome before the "
        "study is marked failed. Jobs lost to a fault that heals (disk full, MLflow or Ray "
        "unreachable) are not counted.",
    )
    retry_base_s: float = Field(
        10.0,
        gt=0,
        description="Wait before the first resubmission of a study whose driver died; it "
        "doubles with each further one (retry_base_s * 2**(n-1)).",
    )
    retry_max_s: float = Field(
        300.0, gt=0, description="Longest wait before a resubmission (the backoff's cap)."
    )
    min_free_mb: int = Field(
        100,
        ge=0,
        description="Free space (MB) the data dir must keep. Below it the disk counts as full: "
        "/readyz answers 503 and studies pause (nothing is submitted or failed) until space "
        "is freed.",
    )
    read_cache: bool = Field(
        True, description="Cache MLflow reads (off only to measure what the cache buys)."
    )
    cache_ttl_s: float = Field(
        2.0, ge=0, description="How long reads of a running study are cached (finished: forever)."
    )

    # -- issue 21, E21b: B2 (no study blocks another), item 7 (creating janitor, give-up) ----
    submit_tries: int = Field(
        5,
        ge=1,
        description="Times Ray may refuse to start a study's job (it answered with an error) "
        "before the study is failed with Ray's answer; the tries are spaced as resubmissions "
        "are (retry_base_s doubling up to retry_max_s), and other studies go on meanwhile.",
    )
    fault_give_up_s: float = Field(
        14400.0,
        gt=0,
        description="How long a study may stay paused for a fault that heals (disk full, Ray "
        "or MLflow unreachable), or keep losing its jobs to one with no trial done between "
        "them, before it is failed with 'gave up after ...: <the fault>'.",
    )
    creating_grace_s: float = Field(
        600.0,
        gt=0,
        description="How long a study may stay 'creating' (its creation died, or its roll-back "
        "failed) before the scheduler rolls it back.",
    )

    # -- issue 21 (E21c), B3: requests from elsewhere; Q4/Q5: the MLflow UI's accounts ------
    allowed_hosts: str | None = Field(
        None,
        description="The names the API is reached by, comma-separated (name or name:port; * "
        "for any): a request whose Host header names another is refused (421), and so is a "
        "change whose browser Origin is another. None: 127.0.0.1, localhost and [::1], plus "
        "this machine's name and addresses when the API binds another address.",
    )
    mlflow_reader_username: str = Field(
        "reader",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="The MLflow UI's read-only account (MLflow's basic-auth app).",
    )
    mlflow_reader_password: SecretStr | None = Field(
        None,
        description="Its password. None: `hprobust serve` generates one into "
        "<data_dir>/mlflow-accounts.json (mode 0600) and prints it at start; with "
        "HPROBUST_MLFLOW_URI naming a basic-auth MLflow server (docker-compose.yml) the service "
        "creates or updates the account with this password, using the writer account of "
        "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD.",
    )

    @model_validator(mode="after")
    def _token_required_off_loopback(self) -> Settings:
        if not is_loopback(self.host) and self.api_token is None:
            raise ValueError(
                f"host must be a loopback address unless HPROBUST_API_TOKEN is set, got "
                f"{self.host!r}: set HPROBUST_API_TOKEN (clients send 'Authorization: Bearer "
                f"<token>') or bind 127.0.0.1"
            )
        if self.api_token is not None:
            token = self.api_token.get_secret_value()
            if any(c.isspace() or not c.isprintable() for c in token):
                raise ValueError(
                    "api_token must not contain spaces or control characters (clients send it "
                    "in 'Authorization: Bearer <token>'), got one that does"
                )
            if len(token) < 16:
                raise ValueError("api_token must be at least 16 characters long, got a shorter one")
        if self.allowed_hosts is not None:
            from service.api.origin import HostRule

            try:
                HostRule(self.allowed_hosts.split(","))
            except ValueError as exc:
                raise ValueError(
                    f"allowed_hosts must be comma-separated names or name:port (or *), got "
                    f"{self.allowed_hosts!r}: {exc}"
                ) from None
        if self.secret is not None:
            from study.records.signing import MIN_SECRET_CHARS

            if len(self.secret.get_secret_value().strip()) < MIN_SECRET_CHARS:
                raise ValueError(
                    f"secret must be at least {MIN_SECRET_CHARS} characters long, got a shorter one"
                )
        return self

    # Signing ------------------------------------------------------------------------------
    @property
    def secret_file(self) -> Path:
        """Where the generated signing secret lives when ``secret`` is not set."""
        from study.records.signing import SECRET_FILE

        return self.data_dir.resolve() / SECRET_FILE

    def signing_secret(self) -> bytes:
        """The signing secret: ``secret``, else the one in ``secret_file`` (created on first
        use)."""
        from study.records.signing import service_secret

        explicit = self.secret.get_secret_value() if self.secret is not None else None
        return service_secret(explicit, self.data_dir.resolve())

    def driver_env(self) -> dict[str, str]:
        """What the study drivers' environment gets from the API: the secret file's path when
        the secret lives in a file (never the secret itself); nothing when ``secret`` is set
        (the Ray head's environment has HPROBUST_SECRET)."""
        from study.records.signing import SECRET_FILE_ENV

        return {} if self.secret is not None else {SECRET_FILE_ENV: str(self.secret_file)}

    # Derived locations ------------------------------------------------------------------
    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI the service and the study driver use."""
        if self.mlflow_uri:
            return self.mlflow_uri
        return f"sqlite:///{self.data_dir.resolve() / 'mlflow.db'}"

    @property
    def driver_tracking_uri(self) -> str:
        """The MLflow tracking URI handed to the study drivers."""
        return self.driver_mlflow_uri or self.tracking_uri

    @property
    def artifact_root(self) -> Path:
        """Artifact folder of the embedded SQLite store."""
        return self.data_dir.resolve() / "mlartifacts"

    @property
    def tune_storage(self) -> Path:
        return (self.storage_path or self.data_dir / "ray_results").resolve()

    @property
    def datasets_dir(self) -> Path:
        return (self.dataset_dir or self.data_dir / "datasets").resolve()

    # Requests from elsewhere (issue 21, B3) -----------------------------------------------
    def served_hosts(self) -> list[str]:
        """The Host names requests may carry (see ``allowed_hosts``)."""
        if self.allowed_hosts is not None:
            return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]
        from service.api.origin import LOOPBACK_HOSTS

        names = list(LOOPBACK_HOSTS)
        if is_loopback(self.host):
            return names
        import socket

        names += [socket.gethostname(), socket.getfqdn()]
        names.append(f"[{self.host}]" if ":" in self.host else self.host)  # as the banner says
        if self.host in ("0.0.0.0", "::", ""):  # every address of this machine
            import psutil

            for addresses in psutil.net_if_addrs().values():
                for address in addresses:
                    if address.family in (socket.AF_INET, socket.AF_INET6):
                        ip = address.address.split("%", 1)[0]
                        names.append(f"[{ip}]" if ":" in ip else ip)
        return list(dict.fromkeys(n.lower() for n in names if n))

    def experiment_url(self, experiment_id: str | None) -> str | None:
        """Link to a study's runs table in the MLflow UI (its trials nested under the study
        run), if a UI URL is known."""
        if not self.mlflow_ui_url or not experiment_id:
            return None
        from study.records.layout import runs_url

        return runs_url(self.mlflow_ui_url, experiment_id)

    # Issue 21, item 1 (probes B1, B5, Q1, Q7): how big a study may be, judged from its spec
    # at POST in closed form (study.spec.bounds; `hprobust run` reads the same variables).
    max_design_points: int = Field(
        SizeLimits.max_design_points,
        ge=1,
        description="Most points one arm's design may have: the grid's crossing lr points x "
        "inits x init_scale points (however few trials_per_arm runs), or trials_per_arm.",
    )
    max_model_params: int = Field(
        SizeLimits.max_model_params,
        ge=1,
        le=MAX_MODEL_PARAMS,
        description="Most parameters of a study's model (estimated from its options).",
    )
    max_activation_mb: float = Field(
        SizeLimits.max_activation_mb,
        gt=0,
        description="Most activation memory of one sample in a forward pass, MB (float32, "
        "estimated from the model's options and the dataset's input shape).",
    )
    max_dataset_mb: float = Field(
        SizeLimits.max_dataset_mb,
        gt=0,
        description="Largest dataset in memory, MB: every sample of both splits as float32 "
        "(every trial loads it whole).",
    )

    def size_limits(self) -> SizeLimits:
        """The limits on a study's size, as :func:`study.spec.bounds.size_problems` takes them."""
        return SizeLimits(
            max_design_points=self.max_design_points,
            max_model_params=self.max_model_params,
            max_activation_mb=self.max_activation_mb,
            max_dataset_mb=self.max_dataset_mb,
        )
