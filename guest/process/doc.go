// Package process is the Windows x64 process as both userlands see it,
// below them: the emulator as a Machine, guest memory read and written
// through it with errors that say where (Memory), the layout of the
// structures Windows keeps for a process and its threads (the TEB, PEB,
// PEB_LDR_DATA, LDR_DATA_TABLE_ENTRY and RTL_USER_PROCESS_PARAMETERS
// offsets in layout.go, checked against mingw-w64's headers by a test),
// the limits of the user address space, the memory and page-protection
// constants (MEM_*, PAGE_*) and pseudo-handles both userlands answer
// with, the command line as the C runtimes parse it back and the
// environment block.
//
// # Layers
//
// Package guest/peload, the PE loader, is pure (bytes in, an image plan
// out) and below everything. This package is the next layer. Above it
// sit the two userlands: package guest, the synthesized Win32 layer (its
// exports a table of name, arity and handler), and package guest/wine,
// Wine's real PE DLLs on NT system calls written in Go (its system calls
// a table of number, name and handler). Neither userland imports the
// other; tests/layering_test.go checks that the graph stays one-way.
//
// Both address spaces keep their allocations in an Allocations: sorted,
// never overlapping, found by binary search, free ranges first-fit. What
// an allocation is stays each userland's own, as it differs: the
// synthesized userland's is a page map (VirtualAlloc, images, the bump
// heap), Wine's Windows' reserve-and-commit runs with the sections
// NtMapViewOfSection maps. The synthesized process has one thread and a
// handful of pseudo-handles, Wine's a scheduler and a handle table of
// kernel objects: those stay in the userlands too.
package process
