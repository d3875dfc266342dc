# API image: the FastAPI service. It validates specs (which needs the model and dataset
# registries, hence torch) but never trains, so docker-compose.yml builds it with torch's
# CPU-only build (TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu, TORCH_VARIANT=+cpu:
# about 10x smaller than the CUDA one; `torch==2.14.1+cpu` satisfies `torch==2.14.1`).
#
# Up to VOLUME this is ray.Dockerfile line for line (same build arguments, same layers);
# see there for the build arguments. Built without arguments it gets the CUDA build, which
# runs on CPU as well, only larger.
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
EXPOSE 8000
CMD ["hprobust", "serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
