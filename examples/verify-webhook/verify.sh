#!/bin/sh
# Verifies a signed buildmon webhook request with openssl:
#   verify.sh SECRET TIMESTAMP SIGNATURE_HEADER BODY_FILE [TOLERANCE_SECONDS]
# TIMESTAMP and SIGNATURE_HEADER are the X-Buildmon-Timestamp and X-Buildmon-Signature headers;
# BODY_FILE holds the body exactly as received. Exits 0 when valid.
set -eu
secret=$1 ts=$2 sigs=$3 body=$4 tolerance=${5:-300}
now=$(date +%s)
age=$((now - ts))
if [ "$age" -gt "$tolerance" ] || [ "$age" -lt "-$tolerance" ]; then
  echo "stale timestamp: ${age}s old" >&2; exit 1
fi
want=$( { printf '%s.' "$ts"; cat "$body"; } | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= //')
case ",$sigs," in
  *",v1=$want,"*) echo "valid"; exit 0 ;;
esac
echo "invalid signature" >&2; exit 1
