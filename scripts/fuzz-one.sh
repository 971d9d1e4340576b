#!/usr/bin/env bash
# fuzz-one.sh NAME PKG GO-TEST-FLAGS...: run one fuzzer. A failure counts
# only if it is a finding: Go writes the failing input to
# PKG/testdata/fuzz/NAME/. A run that ends with a bare "context deadline
# exceeded" and writes nothing is the coordinator's shutdown race at the end
# of a -fuzztime duration (internal/fuzz), not a finding; it is reported and
# ignored.
set -uo pipefail
name=$1 pkg=$2
shift 2
dir="$pkg/testdata/fuzz/$name"
before=$(ls "$dir" 2>/dev/null | sort)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"${GO:-go}" test -run XXX "$@" -fuzz "^$name\$" "$pkg" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && exit 0
after=$(ls "$dir" 2>/dev/null | sort)
# The race's whole report is "--- FAIL: NAME (Ns)" followed by the one line
# "    context deadline exceeded"; anything else is a real failure.
race=$(awk -v n="--- FAIL: $name (" 'index($0, n) == 1 { getline l; if (l == "    context deadline exceeded") r = 1 }
	/panic:|Failing input written|--- FAIL: .*\// { bad = 1 } END { print (r && !bad) ? "yes" : "no" }' "$out")
if [ "$before" = "$after" ] && [ "$race" = yes ]; then
	echo "fuzz-one: $name ended in Go's fuzz-deadline race with no failing input written; not a finding" >&2
	exit 0
fi
exit "$rc"
