#!/usr/bin/env bash
# `make images`: the base image when it is missing, then the three images of the stack.
# Nothing is pulled: the base, docker.io/library/debian:bookworm-slim, is made with
# debootstrap and imported under the official name, so the Containerfiles are the same
# where a registry is reachable. A second run reuses the base and the layer cache.
#   ENGINE=podman|docker (default: podman if present)   TAG=latest
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
TAG=${TAG:-latest}
BASE=docker.io/library/debian:bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { printf '[images] %s\n' "$*"; }

if ! "$ENGINE" image exists "$BASE" 2>/dev/null && ! "$ENGINE" image inspect "$BASE" >/dev/null 2>&1; then
  if [[ $ENGINE == docker ]] && docker pull "$BASE"; then
    :
  else
    command -v debootstrap >/dev/null || { log "debootstrap is needed to make $BASE"; exit 1; }
    rootfs=$(mktemp -d /var/tmp/cqo-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    log "making $BASE with debootstrap (about a minute)"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -c . | "$ENGINE" import - "$BASE" >/dev/null
    rm -rf "$rootfs"; trap - EXIT
  fi
fi

# --format docker: the OCI format drops HEALTHCHECK (podman)
fmt=(); [[ $ENGINE == podman ]] && fmt=(--format docker)
# an HTTPS proxy with its own CA (the host trusts it through PIP_CERT): pip inside the
# build gets the bundle as a build secret, never as a layer
cert=${PIP_CERT:-${SSL_CERT_FILE:-}}
[[ -n $cert && -s $cert ]] && fmt+=(--secret "id=pip_cert,src=$cert")
for image in app rabbitmq postgres; do
  start=$SECONDS
  "$ENGINE" build "${fmt[@]}" --quiet -f "containers/$image/Containerfile" \
      -t "localhost/cqo-$image:$TAG" . >/dev/null
  log "localhost/cqo-$image:$TAG built in $((SECONDS - start)) s"
done
