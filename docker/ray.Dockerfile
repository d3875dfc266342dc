# syntax=docker/dockerfile:1.7
# Ray node image (head and GPU workers): Python 3.11, torch 2.14.1 with CUDA, the project.
#
# The CUDA runtime comes with torch's own wheels (the nvidia-* packages that
# `torch==2.14.1` pulls in on Linux x86_64); the host provides only the NVIDIA driver
# (nvidia-container-toolkit), so the image does not need an nvidia/cuda base.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HPROBUST_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin hprobust \
    && mkdir -p /data && chown hprobust:hprobust /data

WORKDIR /opt/hprobust
# Dependencies first (cached layer), then the source.
COPY pyproject.toml README.md ./
RUN python - <<'PY' > /tmp/requirements.txt
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
RUN pip install -r /tmp/requirements.txt
COPY models ./models
COPY study ./study
COPY service ./service
COPY examples ./examples
RUN pip install --no-deps .

USER hprobust
VOLUME ["/data"]
ENTRYPOINT ["tini", "--"]
# The compose file sets the command (ray start --head ... / ray start --address ...).
CMD ["ray", "start", "--head", "--block"]
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=5 \
    CMD ["ray", "health-check", "--address", "ray-head:6379"]
