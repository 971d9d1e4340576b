package dwarf

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// fakeMem is target memory made of regions; reads return the readable
// prefix, as the Memory contract says.
type fakeMem struct {
	regions []region
	reads   int
}

type region struct {
	addr uint64
	data []byte
}

func (m *fakeMem) ReadMemory(addr uint64, p []byte) (int, error) {
	m.reads++
	n := 0
	for n < len(p) {
		found := false
		for _, r := range m.regions {
			a := addr + uint64(n)
			if a >= r.addr && a-r.addr < uint64(len(r.data)) {
				n += copy(p[n:], r.data[a-r.addr:])
				found = true
				break
			}
		}
		if !found {
			break
		}
	}
	return n, nil
}

// put64 writes little-endian words at addr (a new region each call).
func (m *fakeMem) put64(addr uint64, vals ...uint64) {
	b := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	m.regions = append(m.regions, region{addr, b})
}

// cat joins byte groups: each group is one field, so tests can write the
// meaning of each beside it.
func cat(groups ...[]byte) []byte {
	var out []byte
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func b(v ...byte) []byte { return v }

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// rowString renders a row's CFA and the given registers in binutils'
// frames-interp notation: "rbp+16 rbp=c-16 ra=c-8".
func rowString(r *Row, regs ...uint64) string {
	s := []string{cfaCell(r.CFA)}
	for _, reg := range regs {
		name := RegName(reg)
		if reg == RA {
			name = "ra"
		}
		s = append(s, name+"="+cell(r.Regs[reg]))
	}
	return strings.Join(s, " ")
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func s32(v int32) []byte { return u32(uint32(v)) }

func isErr(err, target error) bool { return errors.Is(err, target) }

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }
