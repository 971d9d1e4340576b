package dwarf

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// fakeMem is the kit's fake target memory: reads return the readable
// prefix, as the Memory contract says; Put64 writes words.
type fakeMem = testkit.Memory

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
