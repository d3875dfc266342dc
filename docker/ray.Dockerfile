# Ray node image (head and GPU workers): Python 3.11, torch 2.14.1 with CUDA, the project.
#
# The CUDA runtime comes with torch's own wheels (the nvidia-* packages that
# `torch==2.14.1` pulls in on Linux x86_64); the host provides only the NVIDIA driver
# (nvidia-container-toolkit), so the image does not need an nvidia/cuda base.
#
# Build arguments (the defaults are what a lab uses; none holds a secret):
#   PYTHON_IMAGE      the Python 3.11 base (docker/offline/ makes one without Docker Hub)
#   PIP_INDEX_URL     a PyPI mirror for every pip install (unset: PyPI)
#   PIP_TRUSTED_HOST  that mirror's host name if it is plain HTTP (pip refuses it otherwise)
#   TORCH_INDEX_URL   where torch and torchvision come from (unset: as everything else);
#   TORCH_VARIANT     with https://download.pytorch.org/whl/cpu and +cpu: torch's CPU build,
#                     about 10x smaller than the CUDA one (docker/compose.cpu.yml sets them)
#
# api.Dockerfile is this file up to VOLUME, line for line, so that images built with the
# same arguments share every layer but the last few.
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
# Layers from the least to the most often changed: torch, the dependencies (from
# pyproject.toml alone), then the sources.
ARG PIP_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG TORCH_INDEX_URL=
ARG TORCH_VARIANT=
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
        "torch==2.14.1${TORCH_VARIANT}" "torchvision==0.29.1${TORCH_VARIANT}"
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY README.md ./
COPY models ./models
COPY study ./study
COPY service ./service
COPY hprobust ./hprobust
COPY examples ./examples
RUN pip install --no-deps . \
    && python -c "import study.driver, service.main, models, hprobust.cli"

USER hprobust
VOLUME ["/data"]
ENTRYPOINT ["tini", "--"]
# The compose file sets the command (ray start --head ... / ray start --address ...).
CMD ["ray", "start", "--head", "--block"]
# Every Ray node (head or worker) runs an agent that reports its raylet and the GCS.
HEALTHCHECK --interval=10s --timeout=10s --start-period=120s --retries=6 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:52365/api/healthz', timeout=8)"]
