#!/usr/bin/env bash
# boot.sh: one boot of the debian-vm guest under QEMU (TCG), until the guest
# powers off or reboots (QEMU runs with -no-reboot, so both end it) or the
# timeout.
#
#   boot.sh --image DIR --overlay FILE --share DIR --console LOG --agent-log LOG
#           [--timeout SECONDS] [--shell]
#
# DIR is an image directory of image.sh. FILE is the qcow2 overlay the guest
# writes (created on DIR/disk.raw if missing; the image itself is never
# written): the runs of one scenario boot the same overlay, so the guest
# keeps what it did across its reboots. The share (DIR, read-only in the
# guest) is a virtio-9p export with the tag debian-vm; the agent in the image
# runs its stages.sh. The first serial port (the kernel's and systemd's
# console) goes to the console log, the second (the agent's output) to the
# agent log; both are appended to.
#
# --shell: no agent; the console is this terminal (ttyS0, root logged in
# without a password; QEMU's monitor on Ctrl-A c, quit with Ctrl-A x).
#
# Exit status: QEMU's (0 when the guest powered off or rebooted), 124 when
# the timeout killed it. Prints the boot's wall time and QEMU's peak RSS on
# stderr.
set -uo pipefail

VM_NAME=boot
# shellcheck source-path=SCRIPTDIR source=../vm-common/vm.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../vm-common/vm.sh"  # vm_qemu

IMG= OVERLAY= SHARE= CONSOLE= AGENT_LOG= TMO=600 SHELL_MODE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMG="$2"; shift 2 ;;
    --overlay) OVERLAY="$2"; shift 2 ;;
    --share) SHARE="$2"; shift 2 ;;
    --console) CONSOLE="$2"; shift 2 ;;
    --agent-log) AGENT_LOG="$2"; shift 2 ;;
    --timeout) TMO="$2"; shift 2 ;;
    --shell) SHELL_MODE=1; shift ;;
    *) echo "boot: unknown argument $1" >&2; exit 2 ;;
  esac
done
for v in IMG OVERLAY SHARE; do
  [ -n "${!v}" ] || { echo "boot: --${v,,} is required" >&2; exit 2; }
done
[ -s "$IMG/disk.raw" ] || { echo "boot: no $IMG/disk.raw" >&2; exit 2; }
if [ ! -f "$OVERLAY" ]; then
  qemu-img create -q -f qcow2 -b "$IMG/disk.raw" -F raw "$OVERLAY" || { echo "boot: qemu-img create failed" >&2; exit 2; }
fi

# quiet, loglevel=3: the console log keeps errors only; the journal keeps the
# rest. init_on_alloc=0: Debian zeroes every page the kernel allocates,
# huge pages included, which costs seconds under TCG.
append="console=ttyS0 root=/dev/vda rootfstype=ext4 rw quiet loglevel=3 panic=-1 mitigations=off init_on_alloc=0"
append+=" systemd.show_status=false"
# -cpu max without svm/vmx: the guest's udev would load kvm for them, seconds
# of TCG time at each boot for nothing.
qemu=(qemu-system-x86_64 -accel tcg,thread=multi -cpu max,-svm,-vmx -machine q35 -smp 2 -m 3072M
      -nodefaults -no-user-config -display none -vga none -nic none -no-reboot
      -drive "file=$OVERLAY,if=virtio,format=qcow2,cache=unsafe,discard=unmap"
      -virtfs "local,path=$SHARE,mount_tag=debian-vm,security_model=none,readonly=on"
      -kernel "$IMG/vmlinux" -initrd "$IMG/initrd.img")
if [ "$SHELL_MODE" = 1 ]; then
  exec "${qemu[@]}" -serial mon:stdio -append "$append"
fi
[ -n "$CONSOLE" ] && [ -n "$AGENT_LOG" ] || { echo "boot: --console and --agent-log are required" >&2; exit 2; }
# The agent runs; no login prompt on the console.
append+=" systemd.mask=serial-getty@ttyS0.service debian_vm.agent=1"
qemu+=(-monitor none -serial "file:$CONSOLE.part" -serial "file:$AGENT_LOG.part" -append "$append")

# QEMU's file: backend truncates, so each boot writes .part files that are
# appended to the logs afterwards.
t0=$(now)
vm_qemu "$TMO" "$CONSOLE.qemu" "${qemu[@]}"
qrc=$QEMU_RC peak=$QEMU_PEAK_KB timed_out=$QEMU_TIMED_OUT
cat "$CONSOLE.part" >>"$CONSOLE" 2>/dev/null
cat "$AGENT_LOG.part" >>"$AGENT_LOG" 2>/dev/null
[ -s "$CONSOLE.qemu" ] && { echo "---- qemu's output"; cat "$CONSOLE.qemu"; } >>"$CONSOLE"
rm -f "$CONSOLE.part" "$AGENT_LOG.part" "$CONSOLE.qemu"
awk -v a="$t0" -v b="$(now)" -v p="$peak" -v t="$timed_out" -v tmo="$TMO" 'BEGIN {
  printf "boot: %.1f s, qemu peak RSS %d MiB%s\n", b - a, p / 1024, t ? " (killed at the timeout of " tmo " s)" : "" }' >&2
[ "$timed_out" = 1 ] && exit 124
exit "$qrc"
