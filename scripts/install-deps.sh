#!/usr/bin/env bash
# Installs the build and test dependencies from Debian's packages (needs root).
# Skips apt entirely when everything is already installed.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config catch2 nlohmann-json3-dev libboost1.81-dev librocksdb-dev)
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
