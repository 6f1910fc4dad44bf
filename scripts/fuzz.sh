#!/usr/bin/env bash
# Runs every Go fuzz target of the repository for a while each.
#
#   scripts/fuzz.sh [SECONDS]     # default 10; or FUZZTIME=20 scripts/fuzz.sh
#
# Targets are found with `go test -list '^Fuzz'`, so a new one runs without
# changing this script. Each runs alone (`-fuzz` takes one target at a time)
# on its package's seed corpus in testdata/fuzz/ and then on mutations. A
# failing input is written to testdata/fuzz/NAME/ of its package, where
# `go test` then runs it as a regression test: commit it with the fix.
set -euo pipefail

secs="${1:-${FUZZTIME:-10}}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]  (a whole number of seconds; got '$secs')" >&2
  exit 2
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# `go test -list` prints a package's matching names, then "ok  PACKAGE ...".
targets=()
names=()
while IFS= read -r line; do
  case "$line" in
    Fuzz*) names+=("$line") ;;
    "ok "*)
      pkg="$(awk '{print $2}' <<<"$line")"
      for n in "${names[@]+"${names[@]}"}"; do targets+=("$pkg $n"); done
      names=()
      ;;
    "?"*) names=() ;;
  esac
done < <(go test -list '^Fuzz' ./...)

if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs}s each"
# corpus lists the inputs of a target's corpus in its package: a new one
# after a run is a failing input that go test wrote.
corpus() { ls "$(go list -f '{{.Dir}}' "$1")/testdata/fuzz/$2" 2>/dev/null || true; }

failed=()
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "==== $name ($pkg)"
  before="$(corpus "$pkg" "$name")"
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" "$pkg" 2>&1 | tee "$log"; [[ ${PIPESTATUS[0]} -eq 0 ]]; then
    continue
  fi
  # Go 1.26's fuzzing coordinator can report the end of -fuzztime itself as
  # a failure, "context deadline exceeded", when a worker is busy at that
  # moment (go.dev/issue/75804, fixed in Go 1.27). That failure writes no
  # input; a real one always does.
  if [[ "$(corpus "$pkg" "$name")" == "$before" ]] && grep -q '^    context deadline exceeded$' "$log" &&
    ! grep -q -e 'Failing input written' -e '^panic' -e 'fuzz: minimizing' "$log"; then
    echo "fuzz: $name ran its ${secs}s and wrote no failing input; its 'context deadline exceeded' is go.dev/issue/75804, not a finding"
    continue
  fi
  failed+=("$name ($pkg)")
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
