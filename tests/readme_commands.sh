#!/usr/bin/env bash
# Runs every README.md code block whose info string is "sh runnable", each with bash -euo pipefail, in a
# scratch directory where build/ and scenarios/ point at the real ones (stores and files land there), with
# MNEMOS_MODEL set to a small model. Fails on the first block that fails, showing its commands and output.
# usage: readme_commands.sh REPO_ROOT BUILD_DIR MODEL_GGUF
set -euo pipefail
root=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
export MNEMOS_MODEL="$3"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$build" "$work/build"
ln -s "$root/scenarios" "$work/scenarios"
awk -v dir="$work" '
    /^```sh runnable$/ { n++; file = dir "/block" n ".sh"; inside = 1; next }
    /^```/ && inside { inside = 0; close(file); next }
    inside { print > file }
' "$root/README.md"
blocks=("$work"/block*.sh)
if [ ! -e "${blocks[0]}" ]; then
    echo "readme_commands: no runnable block in README.md" >&2
    exit 1
fi
for b in "${blocks[@]}"; do
    echo "== $(basename "$b")"
    cat "$b"
    if ! (cd "$work" && bash -euo pipefail "$b" </dev/null >"$b.out" 2>&1); then
        echo "FAILED: a runnable README block; its output:" >&2
        cat "$b.out" >&2
        exit 1
    fi
    echo "ok ($(wc -l <"$b.out") lines of output)"
done
