#!/usr/bin/env bash
# The main job on the embedded default: installs missing Debian packages, builds, and
# runs canvas on the bundled tiny model (today: `canvas inspect`; the edit pipeline
# replaces this when it lands).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash tools/install-deps.sh
bash tools/build.sh build -DCMAKE_BUILD_TYPE=Release
./build/canvas inspect tests/golden/models/edit-tiny
