#!/usr/bin/env bash
# Builds the guest-inspection fixture disks with real tools into OUT (default
# $FERRY_CACHE/inspect-<sha256 of this script>), and writes OUT/manifest.env with every
# identifier the tests check. Needs root for loop devices (LVM) and FUSE (ntfs-3g).
# The LVM fixture uses real lvm2 on loop devices with activation disabled
# (--driverloaded n: this machine's kernel has no device-mapper targets), and the LV
# contents are written at the extents lvm2 allocated (read back from `lvs`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PATH="$PATH:/usr/sbin:/sbin"
export LVM_SUPPRESS_FD_WARNINGS=1
OUT="${1:?usage: build-fixtures.sh OUTDIR}"
mkdir -p "$OUT"
W="$(mktemp -d "${TMPDIR:-/tmp}/ferry-inspect-fix.XXXXXX")"
loops=()
mnt=""
cleanup() {
  [ -n "$mnt" ] && umount "$mnt" 2>/dev/null || true
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
log() { echo "build-fixtures: $*" >&2; }

# ---- identifiers (also written to the manifest) ------------------------------------------
DEB_SIG=5eedf00d
DEB_ROOT_UUID=6a3c1e52-58a4-4d6c-9d8e-2f4b1c7a9e01
DEB_SWAP_UUID=0b5a7c3d-9e1f-4a2b-8c6d-7e9f0a1b2c3d
DEB_HOME_UUID=3f1e2d4c-5b6a-4978-8695-a4b3c2d1e0f9
DEB_SRV_UUID=7c9e1f3a-2b4d-4e6f-8a0b-1c2d3e4f5a6b
RH_BOOT_UUID=2d4f6a8c-0e1b-4c3d-9e5f-7a9b1c3d5e7f
RH_ROOT_UUID=9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d
RH_DATA_UUID=4e5f6a7b-8c9d-4e0f-8a1b-2c3d4e5f6a7b
RH_SWAP_UUID=1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b
RH_ESP_SERIAL=1234ABCD
RH_DISK_GUID=8B5A0C42-1D2E-4F3A-9B4C-5D6E7F8A9B0C
RH_ESP_PARTUUID=C0FFEE00-1111-4222-8333-444455556666
NOOS_EXT2_UUID=aa11bb22-cc33-4d44-8e55-ff6677889900
NOOS_LUKS_UUID=11111111-2222-3333-4444-555555555555
NOOS_BTRFS_UUID=5c4b3a29-1807-4f6e-9d5c-4b3a29180706
DEB_KVER=6.1.0-18-amd64
DEB_KVER_OLD=6.1.0-17-amd64
XEN_KVER=2.6.32-5-xen-amd64
RH_KVER=5.14.0-362.8.1.el9_3.x86_64

# ---- helpers ------------------------------------------------------------------------------
sh_real="$(readlink -f /bin/sh)"   # a real ELF executable: the arch oracle

# A bzImage-shaped kernel file: boot signature, "HdrS" and a version string.
fake_vmlinuz() {
  local out=$1 ver=$2
  truncate -s 8192 "$out"
  printf '\x55\xaa' | dd of="$out" bs=1 seek=510 conv=notrunc status=none
  printf 'HdrS\x0f\x02' | dd of="$out" bs=1 seek=514 conv=notrunc status=none
  # kernel_version pointer (offset - 0x200) at 0x20e -> string at 0x1000
  printf '\x00\x0e' | dd of="$out" bs=1 seek=526 conv=notrunc status=none
  printf '%s (debian-kernel@lists.debian.org) #1 SMP\0' "$ver" | dd of="$out" bs=1 seek=4096 conv=notrunc status=none
}

# A real ELF relocatable object with a .modinfo section, as kernel modules are.
make_ko() {
  local out=$1 name=$2 ver=$3
  cat >"$W/mod.c" <<EOF
__attribute__((section(".modinfo"), used)) static const char l[] = "license=GPL";
__attribute__((section(".modinfo"), used)) static const char n[] = "name=$name";
__attribute__((section(".modinfo"), used)) static const char v[] = "vermagic=$ver SMP mod_unload modversions ";
int init_module(void) { return 0; }
EOF
  mkdir -p "$(dirname "$out")"
  gcc -c -O0 -o "$out" "$W/mod.c"
}

# An mkfs.xfs protofile (-p) describing directory $1 (files, dirs, symlinks).
proto_dir() {
  local d=$1 ind=$2 f name
  for f in "$d"/*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    name=${f##*/}
    if [ -L "$f" ]; then echo "$ind$name l--777 0 0 $(readlink "$f")"
    elif [ -d "$f" ]; then echo "$ind$name d--755 0 0"; proto_dir "$f" "$ind "; echo "$ind\$"
    else echo "$ind$name ---644 0 0 $f"; fi
  done
}
xfs_from_dir() {
  local out=$1 dir=$2 size=$3; shift 3
  { echo /dev/null; echo 0 0; echo 'd--755 0 0'; proto_dir "$dir" ' '; echo '$'; } >"$W/proto.txt"
  rm -f "$out"; truncate -s "$size" "$out"
  mkfs.xfs -q -f -p "$W/proto.txt" "$@" "$out"
}

# Populates a merged-/usr skeleton with a real shell.
usr_skeleton() {
  local r=$1
  mkdir -p "$r"/{etc,usr/bin,usr/sbin,usr/lib,usr/lib64,var/lib,boot,dev,proc,sys,tmp,root,home,srv}
  ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"
  cp "$sh_real" "$r/usr/bin/bash"
  ln -s bash "$r/usr/bin/sh"
  printf '127.0.0.1\tlocalhost\n' >"$r/etc/hosts"
}

# ---- Debian 12, MBR, BIOS, logical partitions ---------------------------------------------
build_debian() {
  log "debian-mbr.img"
  local r="$W/deb"
  usr_skeleton "$r"
  cat >"$r/etc/os-release" <<'EOF'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
EOF
  echo 12.5 >"$r/etc/debian_version"
  echo deb12-web >"$r/etc/hostname"
  cat >"$r/etc/fstab" <<EOF
# /etc/fstab: static file system information.
UUID=$DEB_ROOT_UUID /               ext4    errors=remount-ro 0       1
/dev/sda5       none            swap    sw              0       0
LABEL=home      /home           ext3    defaults        0       2
PARTUUID=$DEB_SIG-07 /srv       xfs     defaults        0       2
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto 0       0
EOF
  mkdir -p "$r/etc/network" "$r/etc/initramfs-tools" "$r/var/lib/dpkg" "$r/boot/grub" "$r/etc/default"
  cat >"$r/etc/network/interfaces" <<'EOF'
source /etc/network/interfaces.d/*
auto lo
iface lo inet loopback
allow-hotplug ens192
iface ens192 inet static
	address 192.0.2.10/24
	gateway 192.0.2.1
EOF
  echo 'MODULES=most' >"$r/etc/initramfs-tools/initramfs.conf"
  cp "$sh_real" "$r/usr/sbin/update-initramfs"
  cp "$sh_real" "$r/usr/bin/dpkg"; cp "$sh_real" "$r/usr/bin/apt"
  cat >"$r/var/lib/dpkg/status" <<EOF
Package: base-files
Status: install ok installed
Version: 12.4+deb12u5

Package: linux-image-$DEB_KVER
Status: install ok installed
Version: 6.1.76-1

Package: open-vm-tools
Status: install ok installed
Version: 2:12.2.0-1+deb12u2
EOF
  echo 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"' >"$r/etc/default/grub"
  cat >"$r/boot/grub/grub.cfg" <<EOF
set default="0"
menuentry 'Debian GNU/Linux' {
	linux	/boot/vmlinuz-$DEB_KVER root=UUID=$DEB_ROOT_UUID ro quiet
	initrd	/boot/initrd.img-$DEB_KVER
}
EOF
  for v in $DEB_KVER $DEB_KVER_OLD $XEN_KVER; do fake_vmlinuz "$r/boot/vmlinuz-$v" "$v"; done
  echo initrd >"$r/boot/initrd.img-$DEB_KVER"
  echo initrd >"$r/boot/initrd.img-$DEB_KVER.bak-longer-name"
  printf 'CONFIG_VIRTIO=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_NET=m\nCONFIG_SCSI_VIRTIO=m\n' >"$r/boot/config-$DEB_KVER"
  printf 'CONFIG_X86_64_XEN=y\nCONFIG_XEN_BLKDEV_FRONTEND=y\n' >"$r/boot/config-$XEN_KVER"
  local m="$r/usr/lib/modules/$DEB_KVER"
  make_ko "$m/kernel/drivers/block/virtio_blk.ko" virtio_blk "$DEB_KVER"
  make_ko "$m/kernel/drivers/net/virtio_net.ko" virtio_net "$DEB_KVER"
  make_ko "$m/kernel/drivers/scsi/virtio_scsi.ko" virtio_scsi "$DEB_KVER"
  printf 'kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_pci.ko\n' >"$m/modules.builtin"
  mkdir -p "$r/usr/lib/modules/$XEN_KVER/kernel"
  # home and srv contents
  mkdir -p "$W/debhome/alice"; echo hello >"$W/debhome/alice/notes.txt"

  local img="$OUT/debian-mbr.img.tmp"
  rm -f "$img"; truncate -s 512M "$img"
  sfdisk -q "$img" <<EOF
label: dos
label-id: 0x$DEB_SIG
start=2048, size=96M, type=83, bootable
start=198656, type=5
start=200704, size=8M, type=82
start=219136, size=16M, type=83
start=253952, size=304M, type=83
EOF
  mkfs.ext4 -q -F -U "$DEB_ROOT_UUID" -L debroot -d "$r" "$W/p1" 96M
  truncate -s 8M "$W/p5"; mkswap -U "$DEB_SWAP_UUID" -L debswap "$W/p5" >/dev/null 2>&1
  mkfs.ext3 -q -F -U "$DEB_HOME_UUID" -L home -d "$W/debhome" "$W/p6" 16M
  truncate -s 304M "$W/p7"; mkfs.xfs -q -f -m uuid="$DEB_SRV_UUID" -L srvdata "$W/p7"
  dd if="$W/p1" of="$img" bs=512 seek=2048 conv=notrunc,sparse status=none
  dd if="$W/p5" of="$img" bs=512 seek=200704 conv=notrunc,sparse status=none
  dd if="$W/p6" of="$img" bs=512 seek=219136 conv=notrunc,sparse status=none
  dd if="$W/p7" of="$img" bs=512 seek=253952 conv=notrunc,sparse status=none
  mv "$img" "$OUT/debian-mbr.img"
}

# ---- RHEL 9, GPT + ESP (UEFI), /boot + LVM root, VG across two disks ---------------------
build_rhel() {
  log "rhel-a.img + rhel-b.img (LVM)"
  local r="$W/rh" b="$W/rhboot" e="$W/rhesp"
  usr_skeleton "$r"
  mkdir -p "$b" "$e"
  cat >"$r/etc/os-release" <<'EOF'
NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
EOF
  echo 'Red Hat Enterprise Linux release 9.3 (Plow)' >"$r/etc/redhat-release"
  echo rhel9-db.example.com >"$r/etc/hostname"
  cat >"$r/etc/fstab" <<EOF
/dev/mapper/rhel-root   /                       xfs     defaults        0 0
UUID=$RH_BOOT_UUID /boot                   ext4    defaults        1 2
UUID=${RH_ESP_SERIAL:0:4}-${RH_ESP_SERIAL:4:4}          /boot/efi               vfat    umask=0077,shortname=winnt 0 2
/dev/mapper/rhel-swap   none                    swap    defaults        0 0
/dev/rhel/data          /data                   ext4    defaults        0 0
EOF
  mkdir -p "$r/etc/sysconfig/network-scripts" "$r/etc/NetworkManager/system-connections" "$r/etc/selinux" \
    "$r/etc/vmware-tools" "$r/var/lib/rpm" "$r/etc/dracut.conf.d" "$r/data"
  printf 'DEVICE=ens192\nBOOTPROTO=dhcp\nONBOOT=yes\nHWADDR=00:50:56:aa:bb:cc\n' >"$r/etc/sysconfig/network-scripts/ifcfg-ens192"
  printf '[connection]\nid=backend\ntype=ethernet\ninterface-name=ens224\n\n[ipv4]\nmethod=manual\naddress1=198.51.100.5/24\n' \
    >"$r/etc/NetworkManager/system-connections/backend.nmconnection"
  printf 'SELINUX=enforcing\nSELINUXTYPE=targeted\n' >"$r/etc/selinux/config"
  printf 'answer BINDIR /usr/bin\nfile /usr/bin/vmware-uninstall-tools.pl\n' >"$r/etc/vmware-tools/locations"
  cp "$sh_real" "$r/usr/bin/vmware-uninstall-tools.pl"
  cp "$sh_real" "$r/usr/bin/dracut"; cp "$sh_real" "$r/usr/bin/rpm"; cp "$sh_real" "$r/usr/bin/dnf"
  echo 'SQLite format 3' >"$r/var/lib/rpm/rpmdb.sqlite"
  local m="$r/usr/lib/modules/$RH_KVER"
  for x in block/virtio_blk net/virtio_net scsi/virtio_scsi; do
    make_ko "$m/kernel/drivers/$x.ko" "${x#*/}" "$RH_KVER"; xz -f "$m/kernel/drivers/$x.ko"
  done
  printf 'kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/virtio/virtio_ring.ko\n' >"$m/modules.builtin"
  # /boot
  fake_vmlinuz "$b/vmlinuz-$RH_KVER" "$RH_KVER"
  echo initrd >"$b/initramfs-$RH_KVER.img"; echo kdump >"$b/initramfs-${RH_KVER}kdump.img"
  printf 'CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_NET=m\nCONFIG_SCSI_VIRTIO=m\n' >"$b/config-$RH_KVER"
  mkdir -p "$b/grub2" "$b/loader/entries"
  printf 'set default="${saved_entry}"\nblscfg\n' >"$b/grub2/grub.cfg"
  printf 'title Red Hat Enterprise Linux (%s) 9.3 (Plow)\nversion %s\nlinux /vmlinuz-%s\ninitrd /initramfs-%s.img\noptions root=/dev/mapper/rhel-root ro\n' \
    "$RH_KVER" "$RH_KVER" "$RH_KVER" "$RH_KVER" >"$b/loader/entries/abc-$RH_KVER.conf"
  # ESP
  mkdir -p "$e/EFI/redhat" "$e/EFI/BOOT"
  printf 'search --no-floppy --fs-uuid --set=dev %s\nset prefix=($dev)/grub2\nconfigfile $prefix/grub.cfg\n' "$RH_BOOT_UUID" >"$e/EFI/redhat/grub.cfg"
  echo shim >"$e/EFI/redhat/shimx64.efi"; echo shim >"$e/EFI/BOOT/BOOTX64.EFI"
  echo 'hello from data' >"$W/data-hello.txt"

  local a="$OUT/rhel-a.img.tmp" bb="$OUT/rhel-b.img.tmp"
  rm -f "$a" "$bb"; truncate -s 512M "$a"; truncate -s 64M "$bb"
  sgdisk -U "$RH_DISK_GUID" \
    -n 1:2048:+40M -t 1:EF00 -u 1:"$RH_ESP_PARTUUID" -c 1:"EFI System Partition" \
    -n 2:0:+48M -t 2:8300 -c 2:boot \
    -n 3:0:0 -t 3:8E00 -c 3:lvm "$a" >/dev/null
  local p3_start p3_sectors
  p3_start=$(sgdisk -i 3 "$a" | awk '/First sector/ {print $3}')
  p3_sectors=$(sgdisk -i 3 "$a" | awk '/Partition size/ {print $3}')
  [ -n "$p3_start" ] && [ -n "$p3_sectors" ] || { log "sgdisk gave no partition 3"; exit 1; }
  rm -f "$W/esp"; mkfs.vfat -F 32 -s 1 -n ESP -i "$RH_ESP_SERIAL" -C "$W/esp" $((40 * 1024)) >/dev/null
  MTOOLS_SKIP_CHECK=1 mcopy -s -i "$W/esp" "$e/EFI" ::/
  mkfs.ext4 -q -F -U "$RH_BOOT_UUID" -L boot -d "$b" "$W/boot" 48M
  dd if="$W/esp" of="$a" bs=512 seek=2048 conv=notrunc,sparse status=none
  dd if="$W/boot" of="$a" bs=512 seek=$((2048 + 40 * 2048)) conv=notrunc,sparse status=none

  # LVM: PV on partition 3 of disk A and on the whole of disk B.
  local la lb vg=ferryrhel$$
  la=$(losetup -f --show -o $((p3_start * 512)) --sizelimit $((p3_sectors * 512)) "$a"); loops+=("$la")
  lb=$(losetup -f --show "$bb"); loops+=("$lb")
  local cfg=(--config "devices { filter=[\"a|^$la\$|\",\"a|^$lb\$|\",\"r|.*|\"] } global { use_lvmetad=0 }")
  pvcreate -q -ff -y "${cfg[@]}" "$la" "$lb" >/dev/null
  vgcreate -q -s 4M "${cfg[@]}" "$vg" "$la" "$lb" >/dev/null
  lvcreate -q --driverloaded n -an -Zn -y "${cfg[@]}" -L 320M -n root "$vg" "$la" >/dev/null
  lvcreate -q --driverloaded n -an -Zn -y "${cfg[@]}" -L 16M -n swap "$vg" "$la" >/dev/null
  lvcreate -q --driverloaded n -an -Zn -y "${cfg[@]}" -i 2 -I 64k -L 32M -n data "$vg" "$la" "$lb" >/dev/null
  vgrename -q "${cfg[@]}" "$vg" rhel >/dev/null
  lvs --noheadings --units b --nosuffix -o lv_name,seg_start_pe,seg_size_pe,segtype,stripes,stripe_size,seg_pe_ranges "${cfg[@]}" rhel \
    >"$OUT/rhel-lvs.txt"
  local pe_start; pe_start=$(pvs --noheadings --units s --nosuffix -o pe_start "${cfg[@]}" "$la" | tr -d ' ')
  echo "PE_START_SECTORS=$pe_start" >"$W/pe.env"
  losetup -d "$la" "$lb"; loops=()

  # Contents: root and swap (linear, on A), data (striped 64 KiB over A and B).
  # RHEL's default root filesystem: XFS (v5), populated through a protofile.
  for i in $(seq -w 1 60); do echo "# unit $i" >"$r/etc/sysconfig/unit-with-a-long-file-name-$i.conf"; done
  xfs_from_dir "$W/root" "$r" 320M -m uuid="$RH_ROOT_UUID" -L root
  truncate -s 16M "$W/swap"; mkswap -U "$RH_SWAP_UUID" -L swap "$W/swap" >/dev/null 2>&1
  mkdir -p "$W/datadir"; cp "$W/data-hello.txt" "$W/datadir/hello.txt"
  mkfs.ext4 -q -F -U "$RH_DATA_UUID" -L data -d "$W/datadir" "$W/data" 32M
  local pe=$((4 * 1024 * 1024)) base=$(((p3_start + pe_start) * 512)) bbase=$((pe_start * 512))
  # seg_pe_ranges looks like /dev/loopN:FIRST-LAST; map each LV from the lvs output.
  while read -r name start size type stripes ssize ranges; do
    case "$name" in
      root|swap)
        local first=${ranges#*:}; first=${first%-*}
        dd if="$W/$name" of="$a" bs=1M seek=$(((base + first * pe) / 1048576)) conv=notrunc,sparse status=none ;;
      data)
        local r1=${ranges%% *} r2=${ranges##* }
        local f1=${r1#*:}; f1=${f1%-*}; local f2=${r2#*:}; f2=${f2%-*}
        local chunks=$((32 * 1024 * 1024 / 65536)) i=0
        while [ $i -lt $chunks ]; do
          local row=$((i / 2))
          if [ $((i % 2)) -eq 0 ]; then
            dd if="$W/data" of="$a" bs=64K skip=$i seek=$(((base + f1 * pe) / 65536 + row)) count=1 conv=notrunc,sparse status=none
          else
            dd if="$W/data" of="$bb" bs=64K skip=$i seek=$(((bbase + f2 * pe) / 65536 + row)) count=1 conv=notrunc,sparse status=none
          fi
          i=$((i + 1))
        done ;;
    esac
  done <"$OUT/rhel-lvs.txt"
  mv "$a" "$OUT/rhel-a.img"; mv "$bb" "$OUT/rhel-b.img"
}

# ---- Windows: MBR, NTFS, SYSTEM and SOFTWARE hives written by hivex ---------------------
build_windows() {
  log "windows.img"
  local h="$W/hives"
  mkdir -p "$h"
  perl "$here/minimal-hive.pl" "$h/SOFTWARE"
  perl "$here/minimal-hive.pl" "$h/SYSTEM"
  hivexsh -w "$h/SOFTWARE" <<'EOF'
add Microsoft
cd Microsoft
add Windows NT
cd Windows NT
add CurrentVersion
cd CurrentVersion
setval 8
ProductName
string:Windows Server 2019 Standard
EditionID
string:ServerStandard
InstallationType
string:Server
CurrentVersion
string:6.3
CurrentBuildNumber
string:17763
CurrentMajorVersionNumber
dword:0x0a
CurrentMinorVersionNumber
dword:0x00
SystemRoot
string:C:\Windows
commit
EOF
  hivexsh -w "$h/SYSTEM" <<'EOF'
add Select
cd Select
setval 2
Current
dword:0x02
Default
dword:0x02
cd ..
add ControlSet002
cd ControlSet002
add Control
add Services
cd Control
add ComputerName
cd ComputerName
add ComputerName
cd ComputerName
setval 1
ComputerName
string:WIN2019-AD
cd ..
cd ..
add Session Manager
cd Session Manager
add Environment
cd Environment
setval 1
PROCESSOR_ARCHITECTURE
string:AMD64
cd ..
cd ..
cd ..
cd Services
add Tcpip
cd Tcpip
add Parameters
cd Parameters
setval 1
Hostname
string:win2019-ad
commit
EOF
  local img="$OUT/windows.img.tmp"
  rm -f "$img"; truncate -s 160M "$img"
  sfdisk -q "$img" <<'EOF'
label: dos
label-id: 0x0badcafe
start=2048, size=32M, type=7, bootable
start=67584, type=7
EOF
  truncate -s 32M "$W/w1"; mkntfs -q -F -f -L "System Reserved" "$W/w1" >/dev/null 2>&1
  truncate -s $((160 * 1024 * 1024 - 67584 * 512)) "$W/w2"; mkntfs -q -F -f -L Windows "$W/w2" >/dev/null 2>&1
  mnt="$W/mnt"; mkdir -p "$mnt"
  ntfs-3g "$W/w2" "$mnt"
  mkdir -p "$mnt/Windows/System32/config" "$mnt/Program Files/VMware/VMware Tools" "$mnt/Users"
  cp "$h/SOFTWARE" "$h/SYSTEM" "$mnt/Windows/System32/config/"
  umount "$mnt"; mnt=""
  dd if="$W/w1" of="$img" bs=512 seek=2048 conv=notrunc,sparse status=none
  dd if="$W/w2" of="$img" bs=512 seek=67584 conv=notrunc,sparse status=none
  mv "$img" "$OUT/windows.img"
  cp "$h/SOFTWARE" "$OUT/SOFTWARE.hive"; cp "$h/SYSTEM" "$OUT/SYSTEM.hive"
}

# ---- No OS: GPT with data filesystems, LUKS, btrfs, swap; plus damaged copies ------------
build_noos() {
  log "noos-gpt.img, gpt-bad-primary.img, gpt-hybrid.img, mbr-loop.img"
  local img="$OUT/noos-gpt.img.tmp"
  rm -f "$img"; truncate -s 256M "$img"
  sgdisk -n 1:2048:+16M -t 1:8300 -c 1:scratch -n 2:0:+24M -t 2:8309 -c 2:secret \
    -n 3:0:+130M -t 3:8300 -c 3:pool -n 4:0:+8M -t 4:8200 -n 5:0:+4M -t 5:EF02 "$img" >/dev/null
  mkdir -p "$W/scratch"; echo 'not an OS' >"$W/scratch/README"
  mkfs.ext2 -q -F -U "$NOOS_EXT2_UUID" -L scratch -d "$W/scratch" "$W/n1" 16M
  truncate -s 24M "$W/n2"; printf pw >"$W/key"
  cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --label secret \
    --uuid "$NOOS_LUKS_UUID" "$W/n2" "$W/key"
  truncate -s 130M "$W/n3"; mkfs.btrfs -q -f -U "$NOOS_BTRFS_UUID" -L pool "$W/n3" >/dev/null
  truncate -s 8M "$W/n4"; mkswap "$W/n4" >/dev/null 2>&1
  local i
  for i in 1 2 3 4; do
    local s; s=$(sgdisk -i $i "$img" | awk '/First sector/ {print $3}')
    dd if="$W/n$i" of="$img" bs=512 seek="$s" conv=notrunc,sparse status=none
  done
  mv "$img" "$OUT/noos-gpt.img"
  # Primary GPT header corrupted (one byte of the disk GUID): the backup must be used.
  cp --sparse=always "$OUT/noos-gpt.img" "$OUT/gpt-bad-primary.img"
  printf '\xff' | dd of="$OUT/gpt-bad-primary.img" bs=1 seek=$((512 + 60)) conv=notrunc status=none
  # Hybrid MBR: partition 1 also in the MBR.
  cp --sparse=always "$OUT/noos-gpt.img" "$OUT/gpt-hybrid.img"
  sgdisk -h 1 "$OUT/gpt-hybrid.img" >/dev/null
  # MBR whose extended chain loops: the second EBR links back to the first.
  img="$OUT/mbr-loop.img"; rm -f "$img"; truncate -s 64M "$img"
  sfdisk -q "$img" <<'EOF'
label: dos
label-id: 0x1005f00d
start=2048, size=8M, type=83
start=18432, type=5
start=20480, size=8M, type=83
start=38912, size=8M, type=82
EOF
  # EBR 2 sits at sector 36864 (38912 - 2048); its link entry -> the first EBR (relative 0).
  local ebr2=$(( $(sfdisk -d "$img" | awk -F'[=,]' '/type=82/ {gsub(/ /,"",$2); print $2}') - 2048 ))
  # entry: status, CHS, type 05, CHS, LBA 0 (relative to the extended start), 2048 sectors
  printf '\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x00' | \
    dd of="$img" bs=1 seek=$((ebr2 * 512 + 462)) conv=notrunc status=none
  echo "MBRLOOP_EBR2=$ebr2" >>"$W/extra.env"
}

touch "$W/extra.env"
build_debian
build_rhel
build_windows
build_noos
{
  for v in DEB_SIG DEB_ROOT_UUID DEB_SWAP_UUID DEB_HOME_UUID DEB_SRV_UUID RH_BOOT_UUID RH_ROOT_UUID RH_DATA_UUID \
    RH_SWAP_UUID RH_ESP_SERIAL RH_DISK_GUID RH_ESP_PARTUUID NOOS_EXT2_UUID NOOS_LUKS_UUID NOOS_BTRFS_UUID \
    DEB_KVER DEB_KVER_OLD XEN_KVER RH_KVER; do
    echo "$v=${!v}"
  done
  cat "$W/pe.env" "$W/extra.env"
} >"$OUT/manifest.env"
log "done: $OUT"
