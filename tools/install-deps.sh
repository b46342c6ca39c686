#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install the Debian packages Ethereal Canvas needs, only those that are missing.
#   build:  cmake gcc clang make pkg-config libjansson-dev libyaml-dev (the settings file)
#   checks: libclang-rt-dev (clang's libFuzzer and ThreadSanitizer runtimes: tools/fuzz.sh, tools/tsan.sh)
#   images: libpng-dev libjpeg-dev libwebp-dev (PNG, JPEG, WebP in; PNG out)
#   bench:  libopenblas-dev (the yardstick the bench programs compare against)
#   server: libmicrohttpd-dev (`canvas serve`), curl and chromium (its tests: the API, the page)
#   scale-out: libhiredis-dev (`canvas serve --queue`, `canvas worker`), redis-server (their test)
# Runs apt-get non-interactively; needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(cmake gcc clang libclang-rt-dev make pkg-config libjansson-dev libyaml-dev libpng-dev libjpeg-dev libwebp-dev libopenblas-dev libmicrohttpd-dev curl chromium libhiredis-dev redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing missing Debian packages: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
