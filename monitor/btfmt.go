package monitor

import (
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"unicode/utf8"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
)

// Backtraces are formatted by appending to one buffer: a 10,000-frame
// table is a megabyte of text, and fmt or encoding/json with a map per
// frame cost more than the walk. The output is byte for byte what
// WriteTable's format strings and json.Marshal of BacktraceJSON give
// (TestAppendMatchesFormat).

const hexDigits = "0123456789abcdef"

var tableHeader = fmt.Sprintf(" # %-17s  %-17s  %-50s %s\n", "Child-SP", "RetAddr", "Call Site", "Trust")

// appendHex16 appends v as WinDbg shows it: 00000000`0014fe40.
func appendHex16(b []byte, v uint64) []byte {
	for s := 60; s >= 32; s -= 4 {
		b = append(b, hexDigits[v>>uint(s)&15])
	}
	b = append(b, '`')
	for s := 28; s >= 0; s -= 4 {
		b = append(b, hexDigits[v>>uint(s)&15])
	}
	return b
}

// appendHexPrefixed appends v as %#x does.
func appendHexPrefixed(b []byte, v uint64) []byte {
	return strconv.AppendUint(append(b, '0', 'x'), v, 16)
}

// appendLocation appends l.String().
func appendLocation(b []byte, l *Location) []byte {
	if l.Module == "" {
		return b
	}
	b = append(b, shortModule(l.Module)...)
	if l.Symbol != "" {
		b = append(b, '!')
		b = append(b, l.Name()...)
		if l.SymOffset != 0 {
			b = appendHexPrefixed(append(b, '+'), l.SymOffset)
		}
	} else {
		b = appendHexPrefixed(append(b, '+'), l.RVA)
	}
	if l.File != "" {
		b = append(b, " ["...)
		b = append(b, l.File...)
		b = append(b, " @ "...)
		b = strconv.AppendInt(b, int64(l.Line), 10)
		b = append(b, ']')
	}
	return b
}

// padRunes pads b[from:] with spaces to width runes, as %-*s does.
func padRunes(b []byte, from, width int) []byte {
	n := len(b) - from
	if n < 4*width { // at most 4 bytes a rune
		n = utf8.RuneCount(b[from:])
	}
	for ; n < width; n++ {
		b = append(b, ' ')
	}
	return b
}

// AppendTable appends the table WriteTable writes.
func (bt *Backtrace) AppendTable(b []byte, full bool) []byte {
	b = append(b, tableHeader...)
	for i := range bt.Frames {
		b = bt.appendTableRow(b, i, full)
	}
	return bt.appendTableEnd(b)
}

// appendTableRow appends frame i's line of the table (and its registers
// when full).
func (bt *Backtrace) appendTableRow(b []byte, i int, full bool) []byte {
	f := &bt.Frames[i]
	if f.Index < 16 {
		b = append(b, '0')
	}
	b = strconv.AppendUint(b, uint64(f.Index), 16)
	b = appendHex16(append(b, ' '), f.SP)
	b = append(b, ' ', ' ')
	switch {
	case i+1 < len(bt.Frames):
		b = appendHex16(b, bt.Frames[i+1].PC)
	case bt.Reason == unwind.StopZeroReturn:
		b = appendHex16(b, 0)
	default:
		b = append(b, "(unknown)        "...)
	}
	b = append(b, ' ', ' ')
	site := len(b)
	b = appendLocation(b, &f.Loc)
	if len(b) == site {
		b = appendHexPrefixed(b, f.PC)
	}
	b = padRunes(b, site, 50)
	b = append(b, ' ')
	b = append(b, f.Trust.String()...)
	if f.InProlog {
		b = append(b, " (in prolog)"...)
	}
	if f.InEpilog {
		b = append(b, " (in epilog)"...)
	}
	b = append(b, '\n')
	if full {
		b = appendNonvolatile(b, &f.Regs, "   ")
	}
	return b
}

// appendTableEnd appends the table's last line: how the walk ended.
func (bt *Backtrace) appendTableEnd(b []byte) []byte {
	b = append(b, "-- "...)
	b = append(b, bt.ended()...)
	return append(b, '\n')
}

// appendNonvolatile appends what writeNonvolatile writes.
func appendNonvolatile(b []byte, c *unwind.Context, indent string) []byte {
	for _, r := range nonvolatileOrder {
		b = append(b, indent...)
		b = padRunes(append(b, r.String()...), len(b), 5)
		v, ok := c.Get(r)
		if !ok {
			b = append(b, " <unknown>\n"...)
			continue
		}
		b = appendHex64(append(b, ' '), v)
		if at, saved := c.SavedAt(r); saved {
			b = appendHex16(append(b, "  saved at "...), at)
			b = append(b, '\n')
		} else {
			b = append(b, "  live\n"...)
		}
	}
	for i := 6; i < 16; i++ {
		if c.XMMAddr[i] != 0 && c.XMMKnown&(1<<i) != 0 {
			x := c.XMM[i]
			b = append(b, indent...)
			b = padRunes(append(b, "xmm"+strconv.Itoa(i)...), len(b), 5)
			b = appendHex64(appendHex64(append(b, ' '), x.Hi), x.Lo)
			b = appendHex16(append(b, "  saved at "...), c.XMMAddr[i])
			b = append(b, '\n')
		}
	}
	return b
}

// appendHex64 appends v as %016x.
func appendHex64(b []byte, v uint64) []byte {
	for s := 60; s >= 0; s -= 4 {
		b = append(b, hexDigits[v>>uint(s)&15])
	}
	return b
}

// jsonKeys are the register names a frame's "regs" and "saved" can hold,
// in the order json.Marshal writes map keys (sorted).
var jsonKeys = func() []jsonKey {
	var keys []jsonKey
	for r := arch.RAX; r <= arch.RIP; r++ {
		keys = append(keys, jsonKey{name: r.String(), reg: r, xmm: -1})
	}
	for k := 6; k < 16; k++ {
		keys = append(keys, jsonKey{name: "xmm" + strconv.Itoa(k), xmm: k})
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j].name < keys[j-1].name; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	for i := range keys {
		keys[i].quoted = `"` + keys[i].name + `":`
	}
	return keys
}()

type jsonKey struct {
	name   string
	quoted string // `"name":`
	reg    arch.Reg
	xmm    int // -1 for general registers
}

// appendJSONString appends s as json.Marshal does: plain printable ASCII
// as is, anything else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONHex appends v as "0x..." (hexs quoted): the quote, prefix and
// room for the digits in one append, then the digits from the last.
func appendJSONHex(b []byte, v uint64) []byte {
	n := max(1, (bits.Len64(v)+3)/4)
	b = append(b, `"0x0000000000000000`[:3+n]...)
	d := b[len(b)-n:]
	for i := n - 1; i >= 0; i-- {
		d[i] = hexDigits[v&15]
		v >>= 4
	}
	return append(b, '"')
}

// appendXMMJSON appends xmmHex(x) quoted.
func appendXMMJSON(b []byte, x unwind.Uint128) []byte {
	if x.Hi == 0 {
		return appendJSONHex(b, x.Lo)
	}
	b = appendJSONHex(b, x.Hi)
	return append(appendHex64(b[:len(b)-1], x.Lo), '"')
}

// AppendJSON appends json.Marshal(BacktraceJSON{Frames: bt.JSON(), End:
// bt.Reason.String()}) and a newline, as `bt -json` prints it.
func (bt *Backtrace) AppendJSON(b []byte) []byte {
	b = append(b, `{"frames":[`...)
	for i := range bt.Frames {
		b = bt.appendJSONFrame(b, i)
	}
	return bt.appendJSONEnd(b)
}

// appendJSONFrame appends frame i's object, after a comma but for the
// first.
func (bt *Backtrace) appendJSONFrame(b []byte, i int) []byte {
	f := &bt.Frames[i]
	if i > 0 {
		b = append(b, ',')
	}
	b = strconv.AppendInt(append(b, `{"index":`...), int64(f.Index), 10)
	b = appendJSONHex(append(b, `,"pc":`...), f.PC)
	b = appendJSONHex(append(b, `,"sp":`...), f.SP)
	if l := &f.Loc; l.Module != "" {
		b = appendJSONString(append(b, `,"module":`...), l.Module)
		b = appendJSONHex(append(b, `,"rva":`...), l.RVA)
		if l.Symbol != "" {
			name := l.Name()
			b = appendJSONString(append(b, `,"symbol":`...), name)
			if name != l.Symbol {
				b = appendJSONString(append(b, `,"mangled":`...), l.Symbol)
			}
			b = appendJSONHex(append(b, `,"offset":`...), l.SymOffset)
		}
		if l.File != "" {
			b = appendJSONString(append(b, `,"file":`...), l.File)
			if l.Line != 0 {
				b = strconv.AppendInt(append(b, `,"line":`...), int64(l.Line), 10)
			}
		}
	}
	b = appendJSONString(append(b, `,"trust":`...), f.Trust.String())
	b = append(b, `,"regs":{`...)
	c := &f.Regs
	first := true
	for _, k := range jsonKeys {
		if k.xmm < 0 {
			if v, ok := c.Get(k.reg); ok {
				b = appendKey(b, &first, k.quoted)
				b = appendJSONHex(b, v)
			}
		} else if v, ok := c.GetXMM(k.xmm); ok {
			b = appendKey(b, &first, k.quoted)
			b = appendXMMJSON(b, v)
		}
	}
	b = append(b, '}')
	first = true
	for _, k := range jsonKeys {
		var at uint64
		if k.xmm < 0 {
			a, ok := c.SavedAt(k.reg)
			if !ok {
				continue
			}
			at = a
		} else {
			if _, ok := c.GetXMM(k.xmm); !ok || c.XMMAddr[k.xmm] == 0 {
				continue
			}
			at = c.XMMAddr[k.xmm]
		}
		if first {
			b = append(b, `,"saved":{`...)
		}
		b = appendKey(b, &first, k.quoted)
		b = appendJSONHex(b, at)
	}
	if !first {
		b = append(b, '}')
	}
	b = append(b, '}')
	return b
}

// appendJSONEnd closes the frames' array and the object.
func (bt *Backtrace) appendJSONEnd(b []byte) []byte {
	b = append(b, ']')
	if end := bt.Reason.String(); end != "" {
		b = appendJSONString(append(b, `,"end":`...), end)
	}
	return append(b, "}\n"...)
}

// streamChunk is about how much of a backtrace's text writeBacktrace
// gathers before each write: the stub sends a piece as O packets while
// the next is formatted, and the buffer stays small however deep the
// stack.
const streamChunk = 256 << 10

// writeBacktrace writes the backtrace as AppendJSON (js) or AppendTable
// would append it, in pieces of about streamChunk bytes formatted in
// buf; it returns buf (grown) for the next command.
func (bt *Backtrace) writeBacktrace(out io.Writer, buf []byte, js, full bool) ([]byte, error) {
	b := buf[:0]
	if js {
		b = append(b, `{"frames":[`...)
	} else {
		b = append(b, tableHeader...)
	}
	for i := range bt.Frames {
		if js {
			b = bt.appendJSONFrame(b, i)
		} else {
			b = bt.appendTableRow(b, i, full)
		}
		if len(b) >= streamChunk {
			if _, err := out.Write(b); err != nil {
				return b, err
			}
			b = b[:0]
		}
	}
	if js {
		b = bt.appendJSONEnd(b)
	} else {
		b = bt.appendTableEnd(b)
	}
	_, err := out.Write(b)
	return b, err
}

// appendKey appends a key of "regs" or "saved" (a jsonKey's quoted name
// and colon), after a comma but for the first.
func appendKey(b []byte, first *bool, quoted string) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	return append(b, quoted...)
}
