#!/usr/bin/env bash
# Runs every go fuzz target in the module briefly (FUZZTIME, default 3s each).
# `go test -fuzz` takes one package and one target per invocation, so loop.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-3s}"
status=0
while IFS= read -r file; do
  pkg="./$(dirname "$file")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
    echo "fuzz $pkg $target ($fuzztime)"
    if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" >/tmp/fuzz.$$.log 2>&1; then
      cat /tmp/fuzz.$$.log
      status=1
    fi
  done
done < <(grep -rlE '^func Fuzz' --include='*_test.go' . | sort)
rm -f /tmp/fuzz.$$.log
exit $status
