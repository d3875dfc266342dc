# syntax=docker/dockerfile:1.7
# API image: the FastAPI service. It validates specs (which needs the model and dataset
# registries, hence torch) but never trains, so it takes torch's CPU-only build (about 10x
# smaller than the CUDA one); `torch==2.14.1+cpu` satisfies the project's `torch==2.14.1`.
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
RUN pip install --index-url https://download.pytorch.org/whl/cpu \
        torch==2.14.1+cpu torchvision==0.29.1+cpu
COPY pyproject.toml README.md ./
COPY models ./models
COPY study ./study
COPY service ./service
COPY examples ./examples
RUN pip install .

USER hprobust
EXPOSE 8000
ENTRYPOINT ["tini", "--"]
CMD ["hprobust", "serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
