#!/usr/bin/env bash
# setup.sh: install everything rspstub builds and tests with (Debian 12).
# Idempotent: does nothing when every package is already installed.
set -euo pipefail

packages=(
	gcc libc6-dev binutils pkg-config      # cgo, static test programs, readelf/objdump
	libc6-dbg                              # libc's symbols for ELF backtraces (GDB and monitor bt)
	libunicorn-dev                         # the emulator
	strace                                 # security tests: what host files the stub opens
	make                                   # make fuzz, make fuzz-smoke
	mingw-w64 clang lld llvm               # Windows test programs
	libz-mingw-w64-dev                     # zlib1.dll for the corpus (tests/corpus)
	gdb lldb lldb-14 python3-lldb-14       # the debuggers we serve (lldb-14 has lldb-vscode-14, the DAP adapter)
	gdbserver                              # a peer
	gdb-mingw-w64 gdb-mingw-w64-target     # Windows-ABI gdb and gdbserver.exe (oracles)
	qemu-system-x86 qemu-user qemu-utils   # the QEMU backend (qemu-img: record/replay disks)
	wine wine64 libwine                    # the Windows oracle
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}" >&2
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v go >/dev/null 2>&1; then
	for d in /usr/local/go/bin /usr/lib/go/bin; do
		[ -x "$d/go" ] && export PATH="$d:$PATH"
	done
fi
command -v go >/dev/null 2>&1 || { echo "setup: Go is not installed (need Go 1.26)" >&2; exit 1; }
