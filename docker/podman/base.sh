#!/usr/bin/env bash
# Makes the Dockerfile's base image available to podman: pulled when a registry answers, else
# a stand-in built from Debian bookworm with debootstrap (Python 3.11, venv, pip, CA
# certificates, `python` on PATH), imported under the base image's name. The stand-in is said
# loudly: it proves the Dockerfile and the worker, not the official image.
#   usage: docker/podman/base.sh [IMAGE]     (IMAGE defaults to the Dockerfile's FROM)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
image=${1:-$(awk '/^FROM /{print $2; exit}' "$here/../../Dockerfile")}
case $image in */*) ;; *) image=docker.io/library/$image ;; esac

if podman image exists "$image"; then
  echo "base image: $image (already present: $(podman image inspect --format '{{index .Labels "org.archiver.stand-in"}}' "$image" | sed 's/^true$/a stand-in/;s/^$/pulled/'))"
  exit 0
fi
if timeout 60 podman pull --quiet "$image" >/dev/null 2>&1; then
  echo "base image: $image (pulled)"
  exit 0
fi

echo "base image: $image cannot be pulled; building a STAND-IN from Debian bookworm (debootstrap)"
mirror=$(awk '/^URIs:/{print $2; exit} /^deb /{print $2; exit}' \
  /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/archiver-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-pip,ca-certificates \
  bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
rm -f "$root.log"
for name in python python3; do ln -sf /usr/bin/python3.11 "$root/usr/local/bin/$name"; done
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --quiet \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'LABEL org.archiver.stand-in=true' \
  --change 'CMD ["python3"]' - "$image" >/dev/null
echo "base image: $image is a stand-in (Debian bookworm, $(podman run --rm "$image" python --version))"
