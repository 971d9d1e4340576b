package monitor

import _ "embed"

// GDBScript is a GDB Python script that registers a frame unwinder fed
// by "monitor bt -json", so that any GDB with Python (Debian's gdb 13 has
// no Windows ABI) shows the stub's Windows x64 frames in its own bt,
// frame N, up/down and info registers. rspstub gdb-script prints it.
//
//go:embed scripts/rspstub-gdb.py
var GDBScript string

// LLDBScript is an LLDB Python module (command script import) adding
// "rspstub-bt [ARGS]" and "rspstub CMD", which run monitor commands and
// print their output. rspstub lldb-script prints it.
//
//go:embed scripts/rspstub_lldb.py
var LLDBScript string
