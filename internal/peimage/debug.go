package peimage

import (
	"bytes"
	"debug/dwarf"
	"debug/pe"
	"fmt"
)

// COFFSymbol is one entry of a file's COFF symbol table.
type COFFSymbol struct {
	Name          string
	Value         uint32
	SectionNumber int16 // 1-based index into Sections; 0 and below are special
	Type          uint16
	StorageClass  uint8
}

// Debug is what a PE file carries for a debugger besides its headers:
// the COFF symbol table and the DWARF sections. Both are decoded by Go's
// debug/pe and debug/dwarf, which do that well; the headers come from
// this package's own walk.
type Debug struct {
	*File
	Symbols []COFFSymbol
	pe      *pe.File
}

// ReadDebug reads the headers, the COFF symbols (at most maxSymbols) and
// prepares the DWARF of a PE file. It never panics: a malformed file is
// an error.
func ReadDebug(data []byte, maxSymbols int) (d *Debug, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, &FormatError{0, fmt.Sprintf("debug/pe: %v", r)}
		}
	}()
	f, err := ReadFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	pf, err := pe.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("COFF symbols: %w", err)
	}
	d = &Debug{File: f, pe: pf}
	for i, s := range pf.Symbols {
		if i >= maxSymbols {
			break
		}
		d.Symbols = append(d.Symbols, COFFSymbol{Name: s.Name, Value: s.Value, SectionNumber: s.SectionNumber, Type: s.Type, StorageClass: s.StorageClass})
	}
	return d, nil
}

// DWARF decodes the file's DWARF sections (.debug_*, or Go's compressed
// .zdebug_*).
func (d *Debug) DWARF() (dw *dwarf.Data, err error) {
	defer func() {
		if r := recover(); r != nil {
			dw, err = nil, &FormatError{0, fmt.Sprintf("DWARF: %v", r)}
		}
	}()
	return d.pe.DWARF()
}

// Close releases the file.
func (d *Debug) Close() error { return d.pe.Close() }
