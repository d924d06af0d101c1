#!/bin/sh
# Runs after install and upgrade (deb postinst configure, rpm %post): enable the service and
# (re)start it so that an upgrade runs the new binary. Nothing is started where systemd is not
# the running init (a container, a chroot, an image build): systemctl may exist there but
# cannot start anything.
set -e

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    systemctl enable otelcol-buildmon.service
    systemctl restart otelcol-buildmon.service
fi
