package testkit

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// ErrUnmapped is what Memory returns when nothing at an address is
// readable (n == 0).
var ErrUnmapped = errors.New("testkit: unmapped memory")

// Memory is the kit's fake guest memory: disjoint regions of bytes. Reads
// behave as rsp.Target's ReadMemory and the unwinder's memory: they
// return the readable prefix (a short count and a nil error at a hole),
// and (0, ErrUnmapped) when the first byte is not mapped. The zero value
// is empty memory. Not safe for concurrent writers.
type Memory struct {
	regions []region // sorted by addr, disjoint
	// Reads counts ReadMemory calls (tests of caching).
	Reads int
}

type region struct {
	addr uint64
	data []byte
}

// Map maps data at addr (the slice is kept, not copied: the test may
// change it later). A region that overlaps an earlier one replaces those
// bytes.
func (m *Memory) Map(addr uint64, data []byte) {
	m.Unmap(addr, uint64(len(data)))
	m.regions = append(m.regions, region{addr, data})
	sort.Slice(m.regions, func(i, j int) bool { return m.regions[i].addr < m.regions[j].addr })
}

// Zero maps size zero bytes at addr.
func (m *Memory) Zero(addr, size uint64) { m.Map(addr, make([]byte, size)) }

// Unmap punches the unreadable hole [addr, addr+size) into the regions.
func (m *Memory) Unmap(addr, size uint64) {
	var out []region
	for _, r := range m.regions {
		end := r.addr + uint64(len(r.data))
		if addr >= end || addr+size <= r.addr {
			out = append(out, r)
			continue
		}
		if addr > r.addr {
			out = append(out, region{r.addr, r.data[:addr-r.addr]})
		}
		if addr+size < end {
			out = append(out, region{addr + size, r.data[addr+size-r.addr:]})
		}
	}
	m.regions = out
}

func (m *Memory) find(a uint64) (region, bool) {
	i := sort.Search(len(m.regions), func(i int) bool {
		r := m.regions[i]
		return r.addr+uint64(len(r.data)) > a
	})
	if i < len(m.regions) && m.regions[i].addr <= a {
		return m.regions[i], true
	}
	return region{}, false
}

// ReadMemory reads the readable prefix of [addr, addr+len(p)).
func (m *Memory) ReadMemory(addr uint64, p []byte) (int, error) {
	m.Reads++
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		r, ok := m.find(a)
		if !ok {
			break
		}
		n += copy(p[n:], r.data[a-r.addr:])
	}
	if n == 0 && len(p) > 0 {
		return 0, ErrUnmapped
	}
	return n, nil
}

// WriteMemory writes the mapped prefix of [addr, addr+len(p)).
func (m *Memory) WriteMemory(addr uint64, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		r, ok := m.find(a)
		if !ok {
			break
		}
		n += copy(r.data[a-r.addr:], p[n:])
	}
	if n == 0 && len(p) > 0 {
		return 0, ErrUnmapped
	}
	return n, nil
}

// Put writes b at addr, mapping a new region for what is not mapped yet.
func (m *Memory) Put(addr uint64, b []byte) {
	n, _ := m.WriteMemory(addr, b)
	if n < len(b) {
		rest := append([]byte(nil), b[n:]...)
		m.Map(addr+uint64(n), rest)
		// bytes after the hole may already be mapped: write through again
		m.WriteMemory(addr, b)
	}
}

// Put64 writes little-endian 64-bit words at addr (mapping them if needed).
func (m *Memory) Put64(addr uint64, vals ...uint64) {
	b := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	m.Put(addr, b)
}

// MapELF maps an ELF file's PT_LOAD segments at bias (page-aligned, with
// the zero-filled tail of .bss), as the dynamic linker does. A missing
// file is a missing tool (Missing).
func (m *Memory) MapELF(t testing.TB, path string, bias uint64) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		Missing(t, "%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		start := p.Vaddr &^ 0xfff
		b := make([]byte, p.Vaddr+p.Memsz-start)
		_, err := p.ReadAt(b[p.Vaddr-start:p.Vaddr-start+p.Filesz], 0)
		require.NoError(t, err, "%s: read segment at %#x", path, p.Vaddr)
		m.Map(bias+start, b)
	}
}
