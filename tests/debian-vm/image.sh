#!/usr/bin/env bash
# image.sh: the Debian 12 guest image of the debian-vm suite, built once and
# cached.
#
#   image.sh --cache DIR [--debs DIR]     prints the image directory on stdout
#
# The image directory (DIR/image-KEY/) holds:
#   disk.raw     ext4 file system of a bookworm system (no partition table):
#                systemd as PID 1, Debian's kernel, PostgreSQL 15, MariaDB,
#                Redis, the runtime dependencies of the .debs under test, and
#                the agent unit (guest/agent.sh) that runs the stage script of
#                the share at boot. Never written: each boot runs on a qcow2
#                overlay (boot.sh).
#   vmlinux      the kernel QEMU boots (-kernel): the uncompressed ELF inside
#                Debian's vmlinuz (PVH entry; saves the decompression under
#                TCG), or the vmlinuz itself when that cannot be extracted
#   initrd.img   Debian's initramfs-tools image, built in the image with the
#                modules the guest needs to mount its root (virtio, ext4)
#   packages     the package list the image was built from
#   build.log    mmdebstrap's output
# KEY is a hash of the package list, RECIPE_VERSION and the files baked into
# the image (this script, guest/customize.sh, guest/agent.sh), so a change to
# any of them builds a new image; older images in DIR are removed.
#
# The system comes from mmdebstrap (Debian package) run on the host, from the
# host's own apt sources for bookworm (its Debian entries; DEBIAN_VM_MIRROR
# overrides), so the guest gets the same package versions the .debs were
# built against. Root is needed
# (mmdebstrap --mode=root, mkfs.ext4 -d preserving owners).
#
# Exit status: 0 (the path printed), 77 with a reason on stdout when the
# mirror cannot be reached, 1 on any other failure (the log's tail printed).
set -uo pipefail

# Bump when the recipe changes in a way the hashed files do not show.
RECIPE_VERSION=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE= DEBS=

fail() { echo "image: error: $*" >&2; exit 1; }
skip() { echo "$*"; exit 77; }

while [ $# -gt 0 ]; do
  case "$1" in
    --cache) CACHE="$2"; shift 2 ;;
    --debs) DEBS="$2"; shift 2 ;;
    *) fail "unknown argument $1" ;;
  esac
done
[ -n "$CACHE" ] || fail "--cache DIR is required"
mkdir -p "$CACHE" || fail "cannot create $CACHE"
CACHE="$(cd "$CACHE" && pwd)"

# ---- the package list -------------------------------------------------------
# What boots (systemd, udev, the kernel), the servers under test, what the
# checks use (procps: pgrep, ps; the clients come with the servers), and the
# libraries the .debs under test depend on, so that `apt install ./x.deb`
# works offline in the guest.
packages=(
  systemd systemd-sysv udev linux-image-amd64 initramfs-tools kmod
  postgresql mariadb-server mariadb-client redis-server redis-tools
  procps psmisc
)
deb_depends() {  # the package names in the Depends and Pre-Depends of our .debs, less our own
  local d own=()
  for d in "$DEBS"/*.deb; do own+=("$(dpkg-deb -f "$d" Package)"); done
  for d in "$DEBS"/*.deb; do
    case "$(basename "$d")" in *-dbgsym_*|*-dev_*) continue ;; esac
    dpkg-deb -f "$d" Depends Pre-Depends | sed 's/^[A-Za-z-]*: //' | tr ',' '\n' |
      sed 's/|.*//; s/(.*)//; s/\[.*\]//; s/:any//; s/[[:space:]]//g'
  done | grep -v '^$' | grep -vxF -f <(printf '%s\n' "${own[@]}") | sort -u
}
if [ -n "$DEBS" ]; then
  ls "$DEBS"/*.deb >/dev/null 2>&1 || fail "--debs $DEBS: no .deb there"
  mapfile -t extra < <(deb_depends)
  packages+=("${extra[@]}")
fi
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)

key=$( { echo "recipe $RECIPE_VERSION"; printf '%s\n' "${packages[@]}";
         cat "$here/image.sh" "$here/guest/customize.sh" "$here/guest/agent.sh"; } | sha256sum | cut -c1-16)
IMG="$CACHE/image-$key"

exec 8>"$CACHE/.image.lock"
flock 8
if [ -s "$IMG/disk.raw" ] && [ -s "$IMG/vmlinux" ] && [ -s "$IMG/initrd.img" ]; then
  echo "image: cached $IMG" >&2
  echo "$IMG"
  exit 0
fi

# ---- host tools --------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "building the image needs root (mmdebstrap --mode=root, mkfs.ext4 -d)"
for t in mmdebstrap mkfs.ext4 xz dpkg-architecture; do
  command -v "$t" >/dev/null ||
    fail "$t not found (run-debian-vm.sh installs mmdebstrap, e2fsprogs, xz-utils, dpkg-dev)"
done
[ -d /usr/share/mmdebstrap/hooks/eatmydata ] || fail "mmdebstrap has no eatmydata hook (/usr/share/mmdebstrap/hooks/eatmydata)"

# The host's Debian sources for bookworm (deb822 .sources or one-line .list
# files), or DEBIAN_VM_MIRROR: mmdebstrap MIRROR arguments (a URL, a
# sources.list line, or a file), separated by spaces.
sources=()
if [ -n "${DEBIAN_VM_MIRROR:-}" ]; then
  read -r -a sources <<<"$DEBIAN_VM_MIRROR"
else
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -qs 'bookworm' "$f" && grep -qsE 'debian' "$f" && sources+=("$f")
  done
fi
[ ${#sources[@]} -gt 0 ] || sources=("http://deb.debian.org/debian")  # mmdebstrap adds updates and security

rm -rf "$IMG.new" && mkdir -p "$IMG.new" || fail "cannot create $IMG.new"
printf '%s\n' "${packages[@]}" >"$IMG.new/packages"
echo "image: building $IMG (mmdebstrap bookworm, ${#packages[@]} packages, sources: ${sources[*]}; log $IMG.new/build.log)" >&2
# Less to unpack and copy: kernel modules for hardware a virtio guest has not,
# manual pages, message catalogs. Only while the image is built: the customize
# hook removes these options, so that the packages under test install whole.
excludes=()
for d in drivers/gpu drivers/net/wireless drivers/net/ethernet drivers/media drivers/infiniband drivers/staging \
         drivers/comedi drivers/usb drivers/scsi drivers/bluetooth drivers/iio sound net/wireless net/mac80211 \
         net/bluetooth; do
  excludes+=(--dpkgopt="path-exclude=/lib/modules/*/kernel/$d/*")
done
excludes+=(--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
           --dpkgopt='path-include=/usr/share/locale/locale.alias')
# No fsync for a tree that is copied into a file system image anyway: dpkg's
# unsafe-io, and mmdebstrap's eatmydata hook for the maintainer scripts
# (initdb, mariadb-install-db). Measured on a shared 2-core host: 90 s instead
# of 216 s for the same package set.
speed=(--dpkgopt=force-unsafe-io --hook-dir=/usr/share/mmdebstrap/hooks/eatmydata)
t0=$SECONDS
# apt variant: the Essential set plus apt, then the list (no Recommends).
# Setup hook: the initramfs gets exactly the modules the guest needs for its
# root (MODULES=list; dep would look at the host's hardware), written before
# initramfs-tools is installed so that its one run builds the right image.
if ! mmdebstrap --mode=root --variant=apt --include="$(IFS=,; echo "${packages[*]}")" "${excludes[@]}" "${speed[@]}" \
    --setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"
                  echo MODULES=list >"$1/etc/initramfs-tools/conf.d/debian-vm.conf"
                  printf "%s\n" virtio_pci virtio_blk ext4 >"$1/usr/share/initramfs-tools/modules.d/debian-vm.conf"' \
    --customize-hook="bash '$here/guest/customize.sh' \"\$1\" '$here/guest/agent.sh'" \
    bookworm "$IMG.new/root" "${sources[@]}" >"$IMG.new/build.log" 2>&1; then
  if grep -qE "Failed to fetch|Could not resolve|Temporary failure|Unable to connect|apt-get update.*failed" \
      "$IMG.new/build.log"; then
    reason="mmdebstrap cannot reach the Debian mirror: $(grep -m1 -E "Failed to fetch|Could not resolve|Temporary failure|Unable to connect|failed" "$IMG.new/build.log")"
    rm -rf "$IMG.new"
    skip "$reason"
  fi
  tail -n 30 "$IMG.new/build.log" >&2
  fail "mmdebstrap failed (log above, in full: $IMG.new/build.log)"
fi
echo "image: mmdebstrap took $((SECONDS - t0)) s" >&2

R="$IMG.new/root"
vmlinuz=$(ls "$R"/boot/vmlinuz-* 2>/dev/null | head -1)
initrd=$(ls "$R"/boot/initrd.img-* 2>/dev/null | head -1)
[ -n "$vmlinuz" ] && [ -n "$initrd" ] || fail "no /boot/vmlinuz-* or /boot/initrd.img-* in the image"
cp "$initrd" "$IMG.new/initrd.img" || fail "cannot copy $initrd"
# Under TCG, decompressing the xz bzImage costs seconds per boot; the ELF
# inside has a PVH entry note, and QEMU boots it directly.
off=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$vmlinuz" | head -1 | cut -d: -f1)
if [ -n "$off" ]; then
  tail -c +$((off + 1)) "$vmlinuz" | xz -dc >"$IMG.new/vmlinux" 2>/dev/null
fi
[ "$(head -c 4 "$IMG.new/vmlinux" 2>/dev/null | tail -c 3)" = ELF ] || cp "$vmlinuz" "$IMG.new/vmlinux"
cp "$R"/boot/config-* "$IMG.new/" 2>/dev/null
echo "image: kernel and initramfs extracted in $((SECONDS - t0)) s from the start" >&2

# The file system: what the tree holds plus room for what the scenario writes
# (the .debs, the servers' data and logs, the journal).
used_mib=$(du -sm "$R" | cut -f1)
size_mib=$((used_mib + used_mib / 4 + 1024))
t1=$SECONDS
mkfs.ext4 -q -F -L debian-vm -E lazy_itable_init=1,lazy_journal_init=1 -d "$R" "$IMG.new/disk.raw" "${size_mib}M" \
  >>"$IMG.new/build.log" 2>&1 || fail "mkfs.ext4 -d failed (see $IMG.new/build.log)"
echo "image: ${used_mib} MiB of files on a ${size_mib} MiB ext4 disk, mkfs.ext4 -d took $((SECONDS - t1)) s" >&2
rm -rf "$R"
echo "image: built in $((SECONDS - t0)) s" >&2

# Publish: the new image, and no older ones (each is about 1.5 GiB).
for old in "$CACHE"/image-*; do
  [ "$old" = "$IMG.new" ] || rm -rf "$old"
done
mv "$IMG.new" "$IMG" || fail "cannot move $IMG.new to $IMG"
echo "$IMG"
