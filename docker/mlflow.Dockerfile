# MLflow tracking server with the PostgreSQL driver (the official image lacks psycopg2).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# PIP_INDEX_URL / PIP_TRUSTED_HOST: a PyPI mirror, as in ray.Dockerfile (unset: PyPI).
ARG PIP_INDEX_URL
ARG PIP_TRUSTED_HOST
# mlflow[auth]: its basic-auth app (docker-compose.yml runs it); its configuration below: every
# signed-in user may read (READ), the user store on volume /mlauth, the admin from the
# environment (MLFLOW_AUTH_ADMIN_USERNAME / _PASSWORD, used once on an empty store); a checked
# password trusted for 60 s (each check is a scrypt hash, ~94 ms of CPU: every write of the
# study drivers paid one).
RUN pip install "mlflow[auth]==3.17.2" psycopg2-binary==2.9.13 \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin mlflow \
    && mkdir -p /mlartifacts /mlauth /etc/mlflow \
    && chown mlflow:mlflow /mlartifacts /mlauth \
    && printf '%s\n' '[mlflow]' 'default_permission = READ' \
        'database_uri = sqlite:////mlauth/basic_auth.db' \
        'authorization_function = mlflow.server.auth:authenticate_request_basic_auth' \
        'auth_cache_ttl_seconds = 60' \
        > /etc/mlflow/basic_auth.ini
ENV MLFLOW_AUTH_CONFIG_PATH=/etc/mlflow/basic_auth.ini

USER mlflow
EXPOSE 5000
VOLUME ["/mlartifacts", "/mlauth"]
# The compose file sets the command (mlflow server ... on PostgreSQL).
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
