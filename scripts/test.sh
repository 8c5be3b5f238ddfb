#!/usr/bin/env bash
# Installs the dependencies, checks formatting and layout (scripts/check-layout.sh), builds, and runs
# every test (CTest). Tests that
# need ../shared/models report a skip when the files are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/check-layout.sh
./scripts/build.sh
dir="${MNEMOS_BUILD_DIR:-build}"
ctest --test-dir "$dir" --output-on-failure "$@"
