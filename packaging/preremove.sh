#!/bin/sh
# Runs before the files are removed (deb prerm, rpm %preun). Stop and disable the service only
# when the package goes away: deb passes "remove", rpm passes 0 for an erase. On an upgrade
# (deb "upgrade", rpm 1) the service keeps running until postinstall restarts it.
set -e

case "$1" in
remove | 0)
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl stop otelcol-buildmon.service || true
        systemctl disable otelcol-buildmon.service || true
    fi
    ;;
esac
