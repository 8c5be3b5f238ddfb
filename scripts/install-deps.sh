#!/usr/bin/env bash
# Installs the build and test dependencies from Debian's packages (needs root).
# Skips apt entirely when everything is already installed.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config catch2 nlohmann-json3-dev libboost1.81-dev librocksdb-dev clang-format
      clang                      # the libFuzzer targets (scripts/fuzz.sh)
      libnats-dev nats-server)   # cluster mode (cluster/) and its tests
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# libFuzzer's runtime (libclang_rt.fuzzer) is in libclang-rt-<N>-dev, only recommended by clang-<N>:
# installed explicitly for the clang that is installed (bookworm: 14), as apt may skip recommends.
clang_major="$(clang -dumpversion | cut -d. -f1)"
if ! dpkg-query -W -f='${Status}' "libclang-rt-${clang_major}-dev" 2>/dev/null | grep -q "install ok installed"; then
  echo "installing: libclang-rt-${clang_major}-dev"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "libclang-rt-${clang_major}-dev" >/dev/null
fi

# Optional: Chromium for the spectator page's browser test (skipped without it).
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  (DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null 2>&1 ||
   { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; }) ||
    echo "chromium could not be installed; the spectator browser test will be skipped"
fi
