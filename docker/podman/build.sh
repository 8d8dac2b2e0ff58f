#!/usr/bin/env bash
# Builds the project's Dockerfile with podman, without a Docker daemon.
#   usage: docker/podman/build.sh [TAG]      (TAG defaults to archiver:latest)
# The base image is pulled, or stood in for (base.sh). Where HTTPS goes through a CA only this
# host trusts, pip in the build is given the host's bundle through a mounted pip.conf; the
# Dockerfile itself is unchanged, and elsewhere the build sees the public CAs only.
#   BUILD_CA_BUNDLE=/path/to/bundle.pem   the bundle to mount (default: pip's or the system's)
#   BUILD_CA_BUNDLE=                      mount none
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
. "$here/env.sh"
tag=${1:-archiver:latest}

bash "$here/base.sh"

default_bundle=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
bundle=${BUILD_CA_BUNDLE-$default_bundle}
mounts=()
if [ -n "$bundle" ] && [ -f "$bundle" ]; then
  home=$(mktemp -d)
  trap 'rm -rf "$home"' EXIT
  mkdir -p "$home/.config/pip"
  cp "$bundle" "$home/ca-bundle.pem"
  printf '[global]\ncert = /root/ca-bundle.pem\n' >"$home/.config/pip/pip.conf"
  mounts=(--volume "$home:/root:ro")
  echo "build: pip trusts the host's CA bundle ($bundle)"
fi

began=$(date +%s)
log=$(mktemp)
if ! podman build --format docker --network host "${mounts[@]}" --tag "$tag" "$project" \
    >"$log" 2>&1; then
  tail -40 "$log"
  echo "build: FAILED (podman build, full log: $log)"
  exit 1
fi
rm -f "$log"
echo "build: $tag in $(( $(date +%s) - began )) s, $(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
