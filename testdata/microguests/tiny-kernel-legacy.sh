#!/bin/sh
# A legacy-only variant of the tiny Linux 6.1 kernel (tiny-kernel.sh): its virtio_pci driver
# behaves as Linux did before 4.0 (before virtio 1.0 support), to prove that a guest which
# speaks only legacy virtio does not find its disk on modern-only (non-transitional) devices
# and boots on transitional ones. force_legacy=1 cannot show that on 6.1: its probe falls back
# to the modern interface for device IDs >= 0x1040.
#
# The one patch (drivers/virtio/virtio_pci_common.c, virtio_pci_probe): the driver probes only
# through the legacy I/O interface (virtio_pci_legacy_probe), never the modern one. That probe
# (virtio_pci_legacy_dev.c) already owns only the transitional/legacy device IDs
# 0x1000-0x103f and returns -ENODEV for the rest, as pre-4.0 kernels' virtio_pci_probe did;
# a modern-only device (0x1040+) is therefore left without a driver.
#
# Same config as tiny-kernel.sh (running it first builds it if needed). Its kept build tree
# (tiny-kernel-<hash>.tree) is patched, rebuilt (only the patched file and the link run
# again, ~1 min) and unpatched, under a lock; without that tree, a fresh tree from
# linux-source with its .config (one tinyconfig build, ~3-5 min on 2 idle cores). Output:
# $FERRY_CACHE/tiny-kernel-legacy-<hash of this script and tiny-kernel.sh>/{vmlinux,bzImage,
# .config} (cached). Needs what tiny-kernel.sh needs, plus patch and flock.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${FERRY_CACHE:-/var/tmp/ferry-cache}
hash=$(cat "$0" "$here/tiny-kernel.sh" | sha256sum | cut -c1-16)
out="$cache/tiny-kernel-legacy-$hash"
[ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ] && { echo "$out/vmlinux"; exit 0; }
# Its last output line is the vmlinux path (a fresh build prints kconfig lines before it).
base=$(dirname "$(sh "$here/tiny-kernel.sh" | tail -n 1)")
[ -f "$base/.config" ] || { echo "tiny-kernel-legacy.sh: $base/.config is missing" >&2; exit 2; }
tarball=$(ls /usr/src/linux-source-6.1*.tar.xz 2>/dev/null | head -1)
[ -n "$tarball" ] || { echo "tiny-kernel-legacy.sh: linux-source-6.1 is not installed" >&2; exit 2; }
work=$(mktemp -d "$cache/tiny-kernel-legacy-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/legacy.patch" <<'EOF'
--- a/drivers/virtio/virtio_pci_common.c
+++ b/drivers/virtio/virtio_pci_common.c
@@ -544,20 +544,11 @@ static int virtio_pci_probe(struct pci_dev *pci_dev,
 	if (rc)
 		goto err_enable_device;
 
-	if (force_legacy) {
-		rc = virtio_pci_legacy_probe(vp_dev);
-		/* Also try modern mode if we can't map BAR0 (no IO space). */
-		if (rc == -ENODEV || rc == -ENOMEM)
-			rc = virtio_pci_modern_probe(vp_dev);
-		if (rc)
-			goto err_probe;
-	} else {
-		rc = virtio_pci_modern_probe(vp_dev);
-		if (rc == -ENODEV)
-			rc = virtio_pci_legacy_probe(vp_dev);
-		if (rc)
-			goto err_probe;
-	}
+	/* Ferry test kernel: legacy only, as before Linux 4.0. The legacy probe owns device IDs
+	 * 0x1000-0x103f only (-ENODEV otherwise); there is no modern fallback. */
+	rc = virtio_pci_legacy_probe(vp_dev);
+	if (rc)
+		goto err_probe;
 
 	pci_set_master(pci_dev);
 
EOF
if [ -f "$base.tree/vmlinux" ]; then
  # The base build's own tree, in place (its recorded paths stay valid), one user at a time;
  # the patch is taken out again at the end (and first, if a run stopped half-way).
  exec 9>"$base.tree.lock"
  flock 9
  src=$base.tree
  cd "$src"
  p() { patch -s -p1 --no-backup-if-mismatch "$@" <"$work/legacy.patch"; }
  p -R --dry-run >/dev/null 2>&1 && p -R
  p
  trap 'cd "$src" && p -R; rm -rf "$work"' EXIT
  make -s -j"$(nproc)" vmlinux bzImage
else
  tar -C "$work" -xf "$tarball"
  src=$(ls -d "$work"/linux-source-6.1*)
  cd "$src"
  # As tiny-kernel.sh: kvm_pvm's instruction emulator cannot deliver INT3.
  sed -i 's/^\tint3_selftest();/\t\/\* int3_selftest() skipped for kvm_pvm \*\//' arch/x86/kernel/alternative.c
  patch -s -p1 --no-backup-if-mismatch <"$work/legacy.patch"
  cp "$base/.config" .config
  make -s olddefconfig
  make -s -j"$(nproc)" vmlinux bzImage
fi
mkdir -p "$out.tmp"
cp vmlinux arch/x86/boot/bzImage .config "$out.tmp/"
mv "$out.tmp" "$out"
echo "$out/vmlinux"
