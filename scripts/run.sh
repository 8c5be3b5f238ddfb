#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the main job: a murder-mystery game (scenarios/
# mystery_blackwood.json, six characters with private scripts) played by the runtime into a durable store,
# stopped halfway as if the machine went down, then resumed from the store: the second half reads the
# characters' KV from disk instead of recomputing it. The model is $MNEMOS_MODEL, else one from
# ../shared/models (mnemos says which on stderr).
#
# With arguments, they go to `mnemos generate` as before (e.g. --model FILE --prompt TEXT --chat).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
dir="${MNEMOS_BUILD_DIR:-build}"
mnemos="$dir/agent/mnemos"
if [ $# -gt 0 ]; then
  exec "$mnemos" generate "$@"
fi

scenario=scenarios/mystery_blackwood.json
store="$dir/demo-store"
rm -rf "$store"
common=(play "$scenario" --store "$store" --max-tokens 24 --transcript "$dir/demo-transcript.txt")

echo "== 1/2: playing the first 40 steps of $scenario into $store (as if the process then died)"
"$mnemos" "${common[@]}" --max-steps 40 --quiet
echo
echo "== 2/2: resuming the game from the store (see 'resumed' and the disk hits on the last line)"
"$mnemos" "${common[@]}" --resume --quiet
echo
"$mnemos" store stats --store "$store"
cat <<EOT

The whole game is in $dir/demo-transcript.txt. Next:
  watch a game live:   $mnemos play $scenario --serve 8080     (open http://127.0.0.1:8080/)
  talk to a character: $mnemos chat --store ./db --session alice --system "You are Alice."
  serve the API:       $mnemos serve --store ./db --port 8080   (OpenAI-compatible, see README.md)
EOT
