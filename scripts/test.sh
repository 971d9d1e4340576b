#!/usr/bin/env bash
# test.sh: install what is needed, then run every test (unit and
# end-to-end with real gdb, lldb, Unicorn, mingw, clang, wine).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export PATH="/usr/local/go/bin:$PATH"
echo "== go vet" >&2
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
echo "== staticcheck (pinned in go.mod; staticcheck.conf)" >&2
go tool staticcheck ./...
echo "== go test (includes tests/TestLayering: the package graph)" >&2
go test -count=1 -timeout 30m "$@" ./...
# QEMU 7.2's record/replay hangs on reverse requests when the machine is
# busy (emulator/qemu/doc.go), as it is while the packages above test in
# parallel: that test runs here, alone.
echo "== go test: QEMU reverse execution, alone" >&2
RSPSTUB_QEMU_REVERSE=1 go test -count=1 -timeout 10m -run 'TestQEMUReverse$' "$@" ./emulator/qemu
echo "== fuzz smoke (make fuzz-smoke)" >&2
make fuzz-smoke >&2
echo "== perf smoke (go run ./tests/perf -quick)" >&2
go run ./tests/perf -quick >&2
