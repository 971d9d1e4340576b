// Package check cross-checks the two kinds of unwind data a MinGW-built
// PE image carries: .pdata (Windows x64 unwind codes) and DWARF CFI.
package check
