#!/usr/bin/env bash
# Base images for a host that cannot pull from Docker Hub (an offline lab network, or this
# project's CI): Debian bookworm made with debootstrap from the host's own Debian mirror,
# then two images built on it that stand in for the official ones the deployment names:
#
#   hprobust-offline/debian:bookworm       debootstrap --variant=minbase (about 200 MB)
#   hprobust-offline/python:3.11-bookworm  for python:3.11.x-slim-bookworm (PYTHON_IMAGE)
#   hprobust-offline/postgres:15-bookworm  for postgres:16.x-bookworm (POSTGRES_IMAGE)
#
# Then build and run the stack with them:
#   docker compose build --build-arg PYTHON_IMAGE=hprobust-offline/python:3.11-bookworm
#   POSTGRES_IMAGE=hprobust-offline/postgres:15-bookworm docker compose up -d
#
# Needs root (debootstrap) and a running Docker engine. Images that exist are kept (delete
# them to rebuild). DEBIAN_MIRROR overrides the mirror (default: the host's apt sources).
# Arguments: which of `python` and `postgres` to make (default: both).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DEBIAN_IMAGE=hprobust-offline/debian:bookworm
PYTHON_IMAGE=hprobust-offline/python:3.11-bookworm
POSTGRES_IMAGE=hprobust-offline/postgres:15-bookworm

have() { docker image inspect "$1" >/dev/null 2>&1; }

host_mirror() {
    local uri
    uri="$(grep -hs -E '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}')"
    if [ -z "$uri" ]; then
        uri="$(grep -hs -E '^deb .*/debian/? bookworm' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
            | head -n1 | awk '{print $2}')"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

if ! have "$DEBIAN_IMAGE"; then
    command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
    mirror="${DEBIAN_MIRROR:-$(host_mirror)}"
    mirror="${mirror%/}"
    rootfs="$(mktemp -d /var/tmp/hprobust-rootfs.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    echo "debootstrap bookworm from $mirror ..."
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
        || { tail -n 20 "$rootfs.log" >&2; exit 1; }
    rm -f "$rootfs.log"
    cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror}-security bookworm-security main
SOURCES
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
    echo "made $DEBIAN_IMAGE"
fi

build() {  # image dockerfile
    if ! have "$1"; then
        echo "building $1 ..."
        DOCKER_BUILDKIT=0 docker build --quiet --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" \
            -t "$1" -f "$here/$2" "$here" >/dev/null
        echo "made $1"
    fi
}
for target in "${@:-python postgres}"; do
    for name in $target; do
        case "$name" in
            python) build "$PYTHON_IMAGE" python.Dockerfile ;;
            postgres) build "$POSTGRES_IMAGE" postgres.Dockerfile ;;
            *) echo "unknown base image $name (python, postgres)" >&2; exit 2 ;;
        esac
    done
done
