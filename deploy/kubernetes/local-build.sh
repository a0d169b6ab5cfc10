#!/usr/bin/env bash
# Builds the Ferry image with podman where no registry can be reached, and runs its
# entrypoint on a tiny manifest (shard 1/1 of the bundled sample guest) inside the image.
#   deploy/kubernetes/local-build.sh DEBIAN12_ROOTFS.tar[.zst] [FERRY_BINARY]
# The Debian 12 root filesystem (e.g. `debootstrap bookworm DIR` then `tar -C DIR -c .`) is
# imported as both stages' base image; the ferry binary (default target/release/ferry) is
# installed through the Dockerfile's PREBUILT argument. Container runs use
# `podman build --isolation chroot` (RUN steps), which needs no OCI runtime or cgroups.
set -euo pipefail
cd "$(dirname "$0")/../.."
rootfs=${1:?usage: local-build.sh DEBIAN12_ROOTFS.tar[.zst] [FERRY_BINARY]}
binary=${2:-target/release/ferry}
ctx=$(mktemp -d -p /var/tmp ferry-image-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
# Limits a container may set without CAP_SYS_RESOURCE (podman's defaults are above them).
limits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=4096:4096")
if ! podman image exists localhost/ferry-debian:12; then
  case "$rootfs" in
  *.zst) zstd -dc "$rootfs" | podman import - localhost/ferry-debian:12 ;;
  *) podman import "$rootfs" localhost/ferry-debian:12 ;;
  esac
fi
# The build context: the tracked files plus the binary (not the whole target directory).
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$ctx"
install -D -m 0755 "$binary" "$ctx/prebuilt/ferry"
podman build --isolation chroot "${limits[@]}" -f deploy/kubernetes/Dockerfile \
  --build-arg BUILD_IMAGE=localhost/ferry-debian:12 --build-arg BASE_IMAGE=localhost/ferry-debian:12 \
  --build-arg PREBUILT=prebuilt/ferry -t localhost/ferry:test "$ctx"
# The entrypoint, run inside the image as the Indexed Job's pod 0 of 1 would run it.
mkdir -p "$ctx/run"
cp testdata/sample/sample.vmx testdata/sample/sample.vmdk "$ctx/run/"
printf '[defaults]\ninput-mode = "vmx"\nos = "/data/out"\nsource = "/manifest/sample.vmx"\n[[vm]]\nname = "s1"\n[[vm]]\nname = "s2"\n' >"$ctx/run/manifest.toml"
cat >"$ctx/run/Containerfile" <<'CF'
FROM localhost/ferry:test
COPY manifest.toml sample.vmx sample.vmdk /manifest/
RUN mkdir -p /data/out \
    && JOB_COMPLETION_INDEX=0 FERRY_SHARDS=1 /usr/local/bin/ferry-shard \
    && qemu-img check /data/out/s1-sda && qemu-img check /data/out/s2-sda \
    && grep -c '<testcase ' /data/out/reports/shard-1.xml \
    && cat /data/out/reports/shard-1.json
CF
podman build --isolation chroot "${limits[@]}" -t localhost/ferry:entrypoint-test "$ctx/run"
echo "local-build: image built, entrypoint ran shard 1/1 inside it"
