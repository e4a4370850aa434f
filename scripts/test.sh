#!/usr/bin/env bash
# The test run behind `npm test` (after set-up). With file or filter arguments: vitest with those. Without: every
# test, in three vitest processes side by side, one per project of vitest.config.ts, each one file at a time: the lab
# files (they share one lab and mostly wait on it), a second stream of long files, and the rest.
# vitest 4 runs a config's projects one after the other, hence three processes. The rest's output comes as it runs,
# the other two follow it; the exit status is non-zero when any of them failed.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then exec npx vitest run "$@"; fi
logs=$(mktemp -d -t dcctl-tests.XXXXXX)
beside=(lab second)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$logs"' EXIT
for project in "${beside[@]}"; do
  npx vitest run --project "$project" >"$logs/$project" 2>&1 &
  pids+=($!)
done
npx vitest run --project rest
status=$?
for i in "${!beside[@]}"; do
  wait "${pids[$i]}" || status=1
  echo "== the ${beside[$i]} test files (run beside the others):"
  cat "$logs/${beside[$i]}"
done
exit "$status"
