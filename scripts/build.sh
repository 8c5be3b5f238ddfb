#!/usr/bin/env bash
# Configures and builds mnemos (Release) into build/ (or $MNEMOS_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${MNEMOS_BUILD_DIR:-build}"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
