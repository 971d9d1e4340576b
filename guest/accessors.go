package guest

import (
	"strings"

	"github.com/rspstub/rspstub/guest/process"
)

// StartPC is the first instruction of the thread (ntdll!LdrInitializeThunk).
func (p *Process) StartPC() uint64 { return p.startPC }

// EntryPoint is the program's entry point (AddressOfEntryPoint).
func (p *Process) EntryPoint() uint64 { return p.exe.entry }

// Modules lists the loaded images in load order, the program first.
func (p *Process) Modules() []Module {
	out := make([]Module, len(p.modules))
	for i, m := range p.modules {
		out[i] = m.Module
	}
	return out
}

// TEB is the address of the thread's TEB (also gs_base).
func (p *Process) TEB() uint64 { return p.teb }

// PEB is the address of the PEB.
func (p *Process) PEB() uint64 { return p.peb }

// StackBase is the top (highest address, exclusive) of the thread's stack.
func (p *Process) StackBase() uint64 { return p.stackBase }

// StackLimit is the lowest address of the thread's stack.
func (p *Process) StackLimit() uint64 { return p.stackLimit }

// Exited reports whether the program has exited, and its exit code.
func (p *Process) Exited() (bool, int) { return p.exited, p.exitCode }

// RegionName names the memory at addr for memory maps: "demo.exe .text",
// "KERNEL32.dll .pdata", "stack", "heap", "TEB", "PEB", "VirtualAlloc", or
// "" for unmapped memory.
func (p *Process) RegionName(addr uint64) string {
	if m := p.moduleAt(addr); m != nil {
		rva := addr - m.Base
		for _, s := range m.sections {
			end := uint64(s.RVA) + process.PageUp(uint64(s.Size))
			if rva >= uint64(s.RVA) && rva < end {
				return m.Name + " " + strings.TrimRight(s.Name, "\x00")
			}
		}
		return m.Name
	}
	if a := p.as.find(addr); a != nil {
		return a.name
	}
	return ""
}
