#!/usr/bin/env bash
# make bench-recon: the reconciliation scale check (docs/BENCHMARKS.md).
# Generates a business day of RECON_ENTRIES journal entries (default 5
# million: 2.5 million request/response pairs) and the counterparty's file,
# then, in a fresh process, exports the day and imports and matches the
# file, printing the times and the peak RSS of that process.
#
#   RECON_ENTRIES  journal entries to generate, default 5000000
#   RECON_DIR      work directory, default a temporary one (removed after)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
entries=${RECON_ENTRIES:-5000000}
go build -o bin/reconbench ./cmd/reconbench
dir=${RECON_DIR:-}
if [ -z "$dir" ]; then
  dir=$(mktemp -d /tmp/cardswitch-recon.XXXXXX)
  trap 'rm -rf "$dir"' EXIT
fi
rm -rf "$dir/db" "$dir/recon" "$dir/theirs.csv"
./bin/reconbench generate --dir "$dir" --entries "$entries"
./bin/reconbench run --dir "$dir"
