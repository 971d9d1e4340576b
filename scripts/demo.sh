#!/usr/bin/env bash
# demo.sh: install what is needed, build rspstub and the bundled example
# (examples/demo/demo.c, main -> a -> b -> c -> d), and serve it.
# Then, in another terminal, follow the printed gdb or lldb command.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export PATH="/usr/local/go/bin:$PATH"
mkdir -p bin
go build -o bin/rspstub ./cmd/rspstub
x86_64-w64-mingw32-gcc -O0 -g -o bin/demo.exe examples/demo/demo.c
exec bin/rspstub serve "$@" bin/demo.exe
