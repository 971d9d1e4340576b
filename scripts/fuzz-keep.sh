#!/usr/bin/env bash
# fuzz-keep.sh [MAXBYTES]: copy the inputs Go's fuzzer found interesting
# (kept in GOCACHE/fuzz/) into the committed corpora, PKG/testdata/fuzz/NAME/,
# for every fuzzer the Makefile runs. Inputs over MAXBYTES (default 65536)
# stay out: the committed corpora are run by every `go test`. The file
# names are Go's content hashes, so running it twice changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-65536}
cache="$(go env GOCACHE)/fuzz/$(go list -m)"
added=0
while read -r name pkg; do
	src="$cache/${pkg#./}/$name"
	[ -d "$src" ] || continue
	dst="$pkg/testdata/fuzz/$name"
	mkdir -p "$dst"
	for f in "$src"/*; do
		[ -f "$f" ] || continue
		[ "$(stat -c %s "$f")" -le "$max" ] || continue
		[ -e "$dst/$(basename "$f")" ] && continue
		cp "$f" "$dst/"
		added=$((added + 1))
	done
done < <(awk '$1 == "$(F)" && $2 ~ /^Fuzz/ { print $2, $3 }' Makefile)
echo "fuzz-keep: $added new inputs copied into testdata/fuzz/" >&2
