#!/bin/sh
# Installs the buildmon build client for a CI job and prints the directory it is in (the only
# thing written to stdout; progress goes to stderr). The GitHub Action (action.yml) and the
# GitLab CI include (ci/gitlab/buildmon.gitlab-ci.yml) both run it.
#
# Environment:
#   BUILDMON_VERSION      release to install, e.g. 0.1.0 (required unless BUILDMON_SOURCE is
#                         a binary, or go with @latest)
#   BUILDMON_SOURCE       release (default): download the archive for this OS and CPU and
#                           SHA256SUMS from BUILDMON_DOWNLOAD_URL, verify, unpack;
#                         go: go install github.com/buildmon/buildmon/cmd/buildmon@vVERSION
#                           (@latest without a version);
#                         a directory: like release, from the archives and SHA256SUMS in it
#                           (e.g. the dist/ of `make package`);
#                         a file: a buildmon binary, used as it is (your own build).
#   BUILDMON_DOWNLOAD_URL where the release's archives and SHA256SUMS are; default
#                         https://github.com/buildmon/buildmon/releases/download/vVERSION
#                         (any URL curl or wget reads, file:// included)
#   BUILDMON_INSTALL_DIR  where to put the client; default RUNNER_TEMP (GitHub) or TMPDIR,
#                         /buildmon-bin under it
#   GITHUB_PATH           when set (GitHub Actions), the directory is appended to it so that
#                         the job's later steps find buildmon on PATH
set -eu

log() { printf 'install-buildmon: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

version=${BUILDMON_VERSION:-}
version=${version#v}
# The version becomes part of file names and URLs: a release's characters only.
case "$version" in
*[!0-9A-Za-z.+-]* | .*) die "BUILDMON_VERSION \"$version\" is not a version (digits, letters, . + -)" ;;
esac
source=${BUILDMON_SOURCE:-release}
install_dir=${BUILDMON_INSTALL_DIR:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/buildmon-bin}

case "$(uname -s)" in
Linux) os=linux ;;
Darwin) os=darwin ;;
MINGW* | MSYS* | CYGWIN* | Windows_NT) os=windows ;;
*) die "unsupported OS $(uname -s)" ;;
esac
case "$(uname -m)" in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "unsupported CPU $(uname -m)" ;;
esac
exe=buildmon
[ "$os" = windows ] && exe=buildmon.exe

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        die "neither sha256sum nor shasum found to verify the download"
    fi
}

fetch() { # URL FILE
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1"
    else
        die "neither curl nor wget found to download $1"
    fi
}

mkdir -p "$install_dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

install_release() { # BASE_URL
    [ -n "$version" ] || die "BUILDMON_VERSION is required to install a release"
    archive="buildmon_${version}_${os}_${arch}.tar.gz"
    [ "$os" = windows ] && archive="buildmon_${version}_${os}_${arch}.zip"
    log "downloading $1/$archive"
    fetch "$1/$archive" "$tmp/$archive" || die "cannot download $1/$archive"
    fetch "$1/SHA256SUMS" "$tmp/SHA256SUMS" || die "cannot download $1/SHA256SUMS"
    want=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$tmp/SHA256SUMS")
    [ -n "$want" ] || die "SHA256SUMS has no line for $archive"
    got=$(sha256 "$tmp/$archive")
    if [ "$got" != "$want" ]; then
        die "checksum mismatch for $archive: SHA256SUMS says $want, the download is $got"
    fi
    log "checksum of $archive verified ($got)"
    mkdir -p "$tmp/x"
    case "$archive" in
    *.zip) unzip -o -q "$tmp/$archive" "$exe" -d "$tmp/x" ;;
    *) tar -xzf "$tmp/$archive" -C "$tmp/x" "$exe" ;;
    esac
    mv -f "$tmp/x/$exe" "$install_dir/$exe"
    chmod 755 "$install_dir/$exe"
}

case "$source" in
go)
    command -v go >/dev/null 2>&1 || die "BUILDMON_SOURCE=go needs Go on PATH"
    ref=latest
    [ -n "$version" ] && ref="v$version"
    log "go install github.com/buildmon/buildmon/cmd/buildmon@$ref"
    GOBIN="$install_dir" go install "github.com/buildmon/buildmon/cmd/buildmon@$ref" >&2
    ;;
release)
    install_release "${BUILDMON_DOWNLOAD_URL:-https://github.com/buildmon/buildmon/releases/download/v$version}"
    ;;
*)
    if [ -f "$source" ]; then
        log "using the binary $source as it is"
        cp "$source" "$install_dir/$exe"
        chmod 755 "$install_dir/$exe"
    elif [ -d "$source" ]; then
        install_release "file://$(cd "$source" && pwd)"
    else
        die "BUILDMON_SOURCE must be release, go, a directory or a binary; $source is none of these"
    fi
    ;;
esac

"$install_dir/$exe" version >&2 || die "the installed $install_dir/$exe does not run"
if [ -n "${GITHUB_PATH:-}" ]; then
    echo "$install_dir" >>"$GITHUB_PATH"
fi
echo "$install_dir"
