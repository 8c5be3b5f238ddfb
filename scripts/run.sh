#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the main job: `mnemos generate`
# on a model ($MNEMOS_MODEL, else ../shared/models) with a prompt. Extra
# arguments go to `mnemos generate` (e.g. --model FILE --prompt TEXT --chat).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
dir="${MNEMOS_BUILD_DIR:-build}"
if [ $# -eq 0 ]; then
  set -- --prompt "Once upon a time" --n-predict 64 --temperature 0
fi
exec "$dir/agent/mnemos" generate "$@"
