#!/usr/bin/env bash
# fuzzers.sh: every fuzz target of the module, one "NAME ./PKG" a line,
# found by `go test -list '^Fuzz'` (so a new Fuzz* function is fuzzed by
# `make fuzz` and CI's `make fuzz-smoke` without being listed anywhere).
# A package whose tests do not build fails the script, rather than
# silently dropping its fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
mod=$("$GO" list -m)
"$GO" test -list '^Fuzz' ./... | awk -v mod="$mod" '
	/^Fuzz/ { names[n++] = $1; next }
	/^ok / {
		pkg = $2
		if (pkg == mod) pkg = "."; else sub("^" mod "/", "./", pkg)
		for (i = 0; i < n; i++) print names[i], pkg
		n = 0
		next
	}
	{ n = 0 }'
