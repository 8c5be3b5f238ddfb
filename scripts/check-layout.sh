#!/usr/bin/env bash
# Static checks CI runs before building:
#  1. every C++/CUDA file is formatted by the committed .clang-format (clang-format --dry-run -Werror);
#  2. no file includes another folder's private src/: "x/src/..." may be included only from x/ itself
#     (and from tests/x/, which test a folder's internals, and fuzz/, whose targets fuzz them);
#  3. engine/ and kernels/ include no Boost, RocksDB or NATS header.
# Prints every violation and exits 1 when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0

mapfile -t sources < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
if ! clang-format --dry-run -Werror "${sources[@]}" 2>/tmp/mnemos-format.txt; then
  grep -E "^[^ ].*(warning|error):" /tmp/mnemos-format.txt | cut -d: -f1 | sort -u | sed 's/^/not formatted: /'
  echo "fix with: clang-format -i \$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')"
  fail=1
fi

# The folder that owns "a/b/src/c.h" is "a/b"; a file may include it when it lives under a/b, tests/a/b or fuzz/.
for f in "${sources[@]}"; do
  while IFS= read -r inc; do
    owner="${inc%%/src/*}"
    case "$f" in
      "$owner"/* | "tests/$owner"/* | "tests/${owner#*/}"/* | fuzz/*) ;;
      *) echo "$f includes another folder's internals: $inc"; fail=1 ;;
    esac
  done < <(grep -oE '^#include "[^"]+/src/[^"]+"' "$f" | sed -E 's/#include "(.*)"/\1/' || true)
done

if grep -nE '^#include [<"](boost|rocksdb|nats)' $(git ls-files 'engine/*' 'kernels/*'); then
  echo "engine/ and kernels/ must not include Boost, RocksDB or NATS"
  fail=1
fi
exit $fail
