// Package loaded describes a module loaded in a debugged process: where
// an image (PE or ELF) lies in the address space and what it is called.
// It is the one Module type of the project: the guest models
// (guest, guest/wine), module discovery (guest/winproc for Windows
// loader lists, guest/linuxproc for Linux link maps), the backends, the
// monitor and the unwinder all speak it, so a module found by one is
// handed to the others without conversion.
//
// It is deliberately a leaf: it imports nothing of the project, so every
// layer can depend on it.
package loaded

// Format is a module's file format.
type Format uint8

const (
	FormatPE  Format = iota // .pdata first, CFI where there is no entry
	FormatELF               // no .pdata: CFI (.eh_frame) only
)

// Module is an image mapped in a process.
type Module struct {
	Name string // base name as the loader lists it ("KERNEL32.dll", "libc.so.6")
	Path string // the path the guest sees (FullDllName, l_name), "" when unknown
	// Base is where the image's headers are (PE: the image base; ELF:
	// the lowest PT_LOAD page); Size reaches the end of the image.
	Base, Size uint64
	// FirstSectionRVA is what the Windows library list reports, as Base
	// + this RVA; 0 when not known (ELF, or before discovery reads it).
	FirstSectionRVA uint32
	// Format is FormatELF for an ELF module the discoverer knows as one;
	// otherwise consumers may find the format from the module's memory.
	Format Format
	// Synthetic marks code an emulator generated (API stubs, synthesized
	// DLLs): no file on disk, and it calls guest code back without call
	// instructions.
	Synthetic bool
	// HostPath is the file on the stub's host the image was read from
	// ("" for a synthesized one or one known from memory only); the
	// library list names a module by it, so that debuggers read the file.
	HostPath string
}

// End is the first address after the image.
func (m Module) End() uint64 { return m.Base + m.Size }

// Contains reports whether addr lies inside the module.
func (m *Module) Contains(addr uint64) bool { return addr >= m.Base && addr-m.Base < m.Size }
