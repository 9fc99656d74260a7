#!/usr/bin/env bash
# guest/customize.sh ROOT AGENT: mmdebstrap's customize hook for the
# debian-vm image (image.sh). Runs on the host, after the packages are
# installed in ROOT; AGENT is guest/agent.sh.
#
# It makes the tree a bootable machine (fstab, hostname, a machine id) and
# adds the test agent: debian-vm-agent.service, which runs the stage script of
# the share when the kernel command line says debian_vm.agent=1 (boot.sh says
# so unless a shell is asked for). Everything else is Debian's as installed:
# the servers' own units, enabled by their packages, start at boot.
set -euo pipefail
R="$1" AGENT="$2"

# The root is the whole virtio disk (no partition table); no fsck at boot
# (each boot starts from a clean overlay or a clean shutdown).
echo "/dev/vda / ext4 rw,noatime,errors=remount-ro 0 0" >"$R/etc/fstab"
echo debian-vm >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$R/etc/hosts"
# A fixed machine id: not a first boot (no systemd-firstboot prompts on the
# console), and the journal of every boot in one directory.
echo 5e0d1a2b3c4d4e5f8a9b0c1d2e3f4a5b >"$R/etc/machine-id"
mkdir -p "$R/var/log/journal"

# The path-exclude options of the build (image.sh) go: the packages installed
# in the guest, ours among them, install every file.
rm -f "$R/etc/dpkg/dpkg.cfg.d/99mmdebstrap"

# Root without a password, logged in on the serial console when a shell is
# asked for (boot.sh --shell): a throw-away test machine with no network.
chroot "$R" passwd -d root >/dev/null
mkdir -p "$R/etc/systemd/system/serial-getty@ttyS0.service.d"
cat >"$R/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty -o '-p -f -- \\u' --keep-baud --autologin root 115200,57600,38400,9600 - $TERM
EOF

# Timers that would run apt, dpkg backups or fstrim during a test boot, and
# the gettys of the virtual consoles (QEMU runs without a display); seconds
# of every boot under TCG, and nothing the checks look at.
chroot "$R" systemctl mask --quiet apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer \
  e2scrub_all.timer e2scrub_reap.service getty@tty1.service getty-static.service

# The agent.
install -D -m 0755 "$AGENT" "$R/usr/local/lib/debian-vm/agent"
cat >"$R/etc/systemd/system/debian-vm-agent.service" <<'EOF'
# The debian-vm test agent (tests/debian-vm): mounts the host's share (9p,
# tag debian-vm) and runs its stage script, which writes its verdicts to the
# second serial port (ttyS1) and then reboots or powers the machine off.
# Type=exec, not oneshot: the script waits for the boot to finish
# (systemctl is-system-running --wait), which a start job of the boot
# transaction itself could not.
[Unit]
Description=debian-vm test agent
ConditionKernelCommandLine=debian_vm.agent=1
After=local-fs.target systemd-udevd.service

[Service]
Type=exec
ExecStart=/usr/local/lib/debian-vm/agent
StandardInput=null
StandardOutput=file:/dev/ttyS1
StandardError=inherit

[Install]
WantedBy=multi-user.target
EOF
chroot "$R" systemctl enable --quiet debian-vm-agent.service
