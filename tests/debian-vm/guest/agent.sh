#!/bin/bash
# /usr/local/lib/debian-vm/agent: run by debian-vm-agent.service in the guest
# (baked into the image by guest/customize.sh). Mounts the host's share (9p,
# tag debian-vm, read-only) on /run/debian-vm/share and runs its stages.sh,
# whose output goes to the second serial port (the unit's stdout). The stage
# script, not this file, holds the scenario, so changing it does not rebuild
# the image. If the share cannot be mounted, or the stage script stops
# without ending the boot, the machine is powered off, so the host does not
# wait for its timeout.
share=/run/debian-vm/share
mkdir -p "$share"
# The share's channel exists once 9pnet_virtio has bound the virtio device,
# which udev's coldplug may not have done yet when this unit starts (a second
# boot of 13 s under TCG: "special device debian-vm does not exist"): load the
# module, then try for up to 30 s; the last try says why it failed.
modprobe -q 9pnet_virtio 2>/dev/null || true
mount_share() { mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=none debian-vm "$share"; }
tries=60
until mount_share 2>/dev/null; do
  tries=$((tries - 1))
  if [ "$tries" -eq 0 ]; then
    if mount_share; then break; fi
    echo "@@ AGENT cannot mount the share (9p tag debian-vm) after 30 s"
    systemctl poweroff
    exit 1
  fi
  sleep 0.5
done
echo "@@ AGENT boot $(cat /proc/sys/kernel/random/boot_id) at $(cut -d' ' -f1 /proc/uptime) s of uptime"
# stages.sh ends each boot itself (reboot or power off) and says so in
# /run/debian-vm/ending; if it stopped before (a bug in it), the machine is
# powered off now rather than idling until the host's timeout.
rm -f /run/debian-vm/ending
bash "$share/stages.sh"
rc=$?
if [ ! -e /run/debian-vm/ending ]; then
  echo "@@ AGENT stages.sh exited with status $rc before ending the boot"
  systemctl poweroff 2>/dev/null
fi
exit "$rc"
