#!/bin/sh
# Runs before the package's files are unpacked (deb preinst, rpm %pre): the service's system
# user and group must exist so that the files owned by them get their owner.
set -e

user=otelcol-buildmon
state_dir=/var/lib/otelcol-buildmon

if ! getent group "$user" >/dev/null; then
    groupadd --system "$user"
fi
if ! getent passwd "$user" >/dev/null; then
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/sbin/nologin
    useradd --system --gid "$user" --no-create-home --home-dir "$state_dir" \
        --shell "$nologin" --comment "buildmon collector" "$user"
fi
