#!/usr/bin/env bash
# Long-running differential soak: random blocks, sequential vs parallel, until stopped.
#   scripts/soak.sh [MINUTES] [SEED]     (no MINUTES: run until interrupted)
# A divergence stops the run and prints the seed and the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
[ -n "${1:-}" ] && args+=(--minutes "$1")
[ -n "${2:-}" ] && args+=(--seed "$2")
exec cargo run --release -q -p blockstm-testkit --bin soak -- "${args[@]}"
