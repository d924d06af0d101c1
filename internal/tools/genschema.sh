#!/usr/bin/env bash
# Generates the telemetry schema (top-level metadata.yaml) into internal/metadata.
#
# mdatagen writes a receiver's builder into <dir>/internal/metadata and names the tests it puts
# beside metadata.yaml after <dir>. The schema is no component of its own, so it is generated
# from a copy in a scratch folder named after its type, and only internal/metadata and
# documentation.md are kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
scratch="$root/internal/tools/.gen/buildmon"
rm -rf "$root/internal/tools/.gen"
mkdir -p "$scratch"
trap 'rm -rf "$root/internal/tools/.gen"' EXIT
cp "$root/metadata.yaml" "$scratch/metadata.yaml"
printf 'package buildmon\n' > "$scratch/doc.go"
(cd "$root" && go tool -modfile=internal/tools/go.mod mdatagen "$scratch/metadata.yaml")
rm -rf "$root/internal/metadata"
mkdir -p "$root/internal/metadata"
cp -r "$scratch/internal/metadata/." "$root/internal/metadata/"
cp "$scratch/documentation.md" "$root/documentation.md"
