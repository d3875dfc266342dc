# A stand-in for python:3.11-slim-bookworm, for hosts that cannot pull from Docker Hub
# (see make-base-images.sh): Debian bookworm's own Python 3.11 in a virtual environment that
# is first on PATH, so `python` and `pip` behave as in the official image (pip installs
# system-wide for the image, no PEP 668 refusal).
ARG DEBIAN_IMAGE=hprobust-offline/debian:bookworm
FROM ${DEBIAN_IMAGE}

ENV LANG=C.UTF-8 \
    PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local/python \
    && python --version && pip --version

CMD ["python3"]
