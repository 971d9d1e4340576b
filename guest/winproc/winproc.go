package winproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/loaded"
)

// Memory reads guest memory like io.ReaderAt with a 64-bit address: a
// short count with a nil error means "readable up to here".
type Memory interface {
	ReadMemory(addr uint64, p []byte) (int, error)
}

// Module is one loaded image.
type Module = loaded.Module

// Limits of the walk. Real processes have a few hundred modules at most;
// UNICODE_STRING lengths are 16-bit.
const (
	MaxModules   = 1024
	MaxNameBytes = 0xFFFE
	MaxImageSize = 1 << 31
)

// lteReadSize is how much of an LDR_DATA_TABLE_ENTRY the walk reads: up
// to the end of BaseDllName (the offsets are package process's).
const lteReadSize = process.LTEBaseDllName + 16

// ProblemKind classifies what the walk found wrong.
type ProblemKind uint8

const (
	ProblemUnreadable ProblemKind = iota + 1 // a structure or string could not be read
	ProblemCorrupt                           // a field holds an impossible value
	ProblemLoop                              // the list returns to an entry already seen
	ProblemTooMany                           // more than MaxModules entries
)

// Problem is one thing the walk could not use, with where it was found.
type Problem struct {
	Kind ProblemKind
	Addr uint64 // the structure (entry, string) concerned
	Msg  string
}

func (p Problem) String() string { return p.Msg }

// Regs are the registers FindTEB needs.
type Regs struct {
	CS           uint64 // its low two bits are the CPL
	GSBase       uint64 // IA32_GS_BASE
	KernelGSBase uint64 // IA32_KERNEL_GS_BASE (QEMU's k_gs_base)
}

// ErrNoTEB is wrapped by FindTEB's error when no candidate is a TEB.
var ErrNoTEB = errors.New("no TEB")

// FindTEB returns the current thread's TEB: gs_base in user mode,
// k_gs_base in kernel mode (after swapgs), each tried second when the
// first is not a TEB. See the package documentation for the rule.
func FindTEB(mem Memory, r Regs) (uint64, error) {
	type cand struct {
		name string
		v    uint64
	}
	c := [2]cand{{"gs_base", r.GSBase}, {"k_gs_base", r.KernelGSBase}}
	if r.CS&3 == 0 {
		c[0], c[1] = c[1], c[0]
	}
	var why [2]string
	for i, k := range c {
		err := CheckTEB(mem, k.v)
		if err == nil {
			return k.v, nil
		}
		why[i] = fmt.Sprintf("%s %#x: %v", k.name, k.v, err)
	}
	mode := "user"
	if r.CS&3 == 0 {
		mode = "kernel"
	}
	return 0, fmt.Errorf("%w: stopped in %s mode (cs %#x); %s; %s", ErrNoTEB, mode, r.CS, why[0], why[1])
}

// CheckTEB tells whether addr holds a TEB: readable, with TEB.Self == addr.
func CheckTEB(mem Memory, addr uint64) error {
	if addr == 0 {
		return errors.New("is 0 (not set yet?)")
	}
	if !canonical(addr) {
		return errors.New("not a canonical address")
	}
	self, err := read64(mem, addr+process.TEBSelf)
	if err != nil {
		return fmt.Errorf("TEB unmapped (%v)", err)
	}
	if self != addr {
		return fmt.Errorf("TEB.Self (+0x30) is %#x, not the TEB's own address", self)
	}
	return nil
}

// Process is what a walk from a TEB found.
type Process struct {
	TEB, PEB, Ldr uint64
	ImageBase     uint64 // PEB.ImageBaseAddress
	Modules       []Module
	Problems      []Problem
}

// Walk reads the PEB and the loader's InLoadOrderModuleList starting at
// the TEB. It fails only when the TEB or PEB cannot be read; everything
// else is reported in Problems.
func Walk(mem Memory, teb uint64) (*Process, error) {
	p := &Process{TEB: teb}
	peb, err := read64(mem, teb+process.TEBPEB)
	if err != nil {
		return nil, fmt.Errorf("read TEB.ProcessEnvironmentBlock at %#x: %w", teb+process.TEBPEB, err)
	}
	if peb == 0 || !canonical(peb) {
		return nil, fmt.Errorf("TEB %#x has no valid PEB pointer (%#x)", teb, peb)
	}
	p.PEB = peb
	var hdr [process.PEBLdr + 8]byte
	if err := readFull(mem, peb, hdr[:]); err != nil {
		return nil, fmt.Errorf("read the PEB at %#x: %w", peb, err)
	}
	p.ImageBase = binary.LittleEndian.Uint64(hdr[process.PEBImageBase:])
	p.Ldr = binary.LittleEndian.Uint64(hdr[process.PEBLdr:])
	if p.Ldr == 0 {
		p.Problems = append(p.Problems, Problem{ProblemCorrupt, peb + process.PEBLdr, "PEB.Ldr is 0 (the loader has not run yet)"})
		return p, nil
	}
	p.Modules, p.Problems = LoadOrder(mem, p.Ldr, p.Problems)
	return p, nil
}

// Entry is one LDR_DATA_TABLE_ENTRY as read, for callers that print the
// raw list (monitor peb).
type Entry struct {
	Addr   uint64
	Module Module
	OK     bool // the entry passed every check and is in the module list
}

// LoadOrder walks PEB_LDR_DATA.InLoadOrderModuleList at ldr and returns
// the valid modules, with problems appended to probs.
func LoadOrder(mem Memory, ldr uint64, probs []Problem) ([]Module, []Problem) {
	var mods []Module
	probs = Entries(mem, ldr, probs, func(e Entry) {
		if e.OK {
			mods = append(mods, e.Module)
		}
	})
	return mods, probs
}

// Entries walks the list like LoadOrder and calls fn for every entry it
// could read, valid or not.
func Entries(mem Memory, ldr uint64, probs []Problem, fn func(Entry)) []Problem {
	head := ldr + process.LdrInLoadOrder
	e, err := read64(mem, head)
	if err != nil {
		return append(probs, Problem{ProblemUnreadable, head, fmt.Sprintf("PEB_LDR_DATA at %#x unreadable: %v", ldr, err)})
	}
	seen := make(map[uint64]bool)
	prev := head
	var buf [lteReadSize]byte
	for n := 0; e != head; n++ {
		if n >= MaxModules {
			return append(probs, Problem{ProblemTooMany, e, fmt.Sprintf("more than %d loader entries: stopped", MaxModules)})
		}
		if e == 0 || !canonical(e) {
			return append(probs, Problem{ProblemCorrupt, prev, fmt.Sprintf("entry %#x: Flink is %#x", prev, e)})
		}
		if seen[e] {
			return append(probs, Problem{ProblemLoop, e, fmt.Sprintf("the load-order list loops back to entry %#x (from %#x)", e, prev)})
		}
		seen[e] = true
		if err := readFull(mem, e, buf[:]); err != nil {
			return append(probs, Problem{ProblemUnreadable, e, fmt.Sprintf("loader entry %#x unreadable: %v", e, err)})
		}
		m, entryProbs := decodeEntry(mem, e, buf[:])
		probs = append(probs, entryProbs...)
		fn(Entry{Addr: e, Module: m, OK: len(entryProbs) == 0})
		if blink := binary.LittleEndian.Uint64(buf[8:]); blink != prev {
			// Not fatal (a list being edited), but worth saying.
			probs = append(probs, Problem{ProblemCorrupt, e, fmt.Sprintf("entry %#x: Blink %#x does not point back to %#x", e, blink, prev)})
		}
		prev, e = e, binary.LittleEndian.Uint64(buf[0:])
	}
	return probs
}

// decodeEntry checks one LDR_DATA_TABLE_ENTRY (buf holds its first
// lteReadSize bytes).
func decodeEntry(mem Memory, e uint64, buf []byte) (Module, []Problem) {
	var probs []Problem
	m := Module{
		Base: binary.LittleEndian.Uint64(buf[process.LTEDllBase:]),
		Size: uint64(binary.LittleEndian.Uint32(buf[process.LTESizeOfImage:])),
	}
	var err error
	m.Path, err = unicodeString(mem, buf[process.LTEFullDllName:])
	if err != nil {
		probs = append(probs, Problem{ProblemUnreadable, e + process.LTEFullDllName, fmt.Sprintf("entry %#x: FullDllName: %v", e, err)})
	}
	m.Name, err = unicodeString(mem, buf[process.LTEBaseDllName:])
	if err != nil {
		probs = append(probs, Problem{ProblemUnreadable, e + process.LTEBaseDllName, fmt.Sprintf("entry %#x: BaseDllName: %v", e, err)})
	}
	if m.Name == "" {
		m.Name = baseName(m.Path)
	}
	if m.Name == "" && len(probs) == 0 {
		probs = append(probs, Problem{ProblemCorrupt, e + process.LTEBaseDllName, fmt.Sprintf("entry %#x: no name", e)})
	}
	switch {
	case m.Base == 0 || m.Base%process.PageSize != 0 || !canonical(m.Base):
		probs = append(probs, Problem{ProblemCorrupt, e + process.LTEDllBase, fmt.Sprintf("entry %#x (%s): DllBase %#x is not a page-aligned address", e, m.Name, m.Base)})
	case m.Size < process.PageSize || m.Size > MaxImageSize || m.Base+m.Size < m.Base:
		probs = append(probs, Problem{ProblemCorrupt, e + process.LTESizeOfImage, fmt.Sprintf("entry %#x (%s): SizeOfImage %#x is not a plausible image size", e, m.Name, m.Size)})
	}
	return m, probs
}

// unicodeString reads the string a UNICODE_STRING {Length u16,
// MaximumLength u16, pad, Buffer u64} (in b) points to.
func unicodeString(mem Memory, b []byte) (string, error) {
	n := int(binary.LittleEndian.Uint16(b[0:]))
	maxLen := int(binary.LittleEndian.Uint16(b[2:]))
	ptr := binary.LittleEndian.Uint64(b[8:])
	switch {
	case n == 0:
		return "", nil
	case n%2 != 0 || n > MaxNameBytes || (maxLen != 0 && maxLen < n):
		return "", fmt.Errorf("bad length %d (maximum %d)", n, maxLen)
	case ptr == 0 || !canonical(ptr):
		return "", fmt.Errorf("bad buffer %#x", ptr)
	}
	raw := make([]byte, n)
	if err := readFull(mem, ptr, raw); err != nil {
		return "", fmt.Errorf("buffer %#x: %w", ptr, err)
	}
	u := make([]uint16, n/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	return string(utf16.Decode(u)), nil
}

// ReadUnicodeString reads a UNICODE_STRING structure at addr.
func ReadUnicodeString(mem Memory, addr uint64) (string, error) {
	var hdr [16]byte
	if err := readFull(mem, addr, hdr[:]); err != nil {
		return "", err
	}
	return unicodeString(mem, hdr[:])
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// canonical reports whether addr is a canonical 48-bit x86-64 address.
func canonical(addr uint64) bool {
	top := addr >> 47
	return top == 0 || top == 0x1FFFF
}

func readFull(mem Memory, addr uint64, p []byte) error {
	if addr+uint64(len(p)) < addr {
		return fmt.Errorf("%#x+%d wraps around", addr, len(p))
	}
	n, err := mem.ReadMemory(addr, p)
	if n >= len(p) {
		return nil
	}
	if err == nil {
		err = errors.New("unmapped")
	}
	return fmt.Errorf("%d of %d bytes at %#x readable: %w", n, len(p), addr, err)
}

func read64(mem Memory, addr uint64) (uint64, error) {
	var b [8]byte
	if err := readFull(mem, addr, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}
