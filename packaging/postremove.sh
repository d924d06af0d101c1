#!/bin/sh
# Runs after the files are removed (deb postrm, rpm %postun). systemd forgets the unit on
# removal. "purge" (deb only) also deletes the state: checkpoints, reports and file_storage in
# /var/lib/otelcol-buildmon. The system user stays, as Debian's policy advises, so that files
# it still owns are not handed to a later user with the same id.
set -e

case "$1" in
remove | purge | 0)
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl daemon-reload || true
    fi
    ;;
esac
if [ "$1" = purge ]; then
    rm -rf /var/lib/otelcol-buildmon
fi
