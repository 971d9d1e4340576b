// Package drcov writes basic-block coverage in DynamoRIO's drcov format,
// the one Lighthouse (IDA, Binary Ninja), Cartographer (Ghidra) and
// Binary Ninja's own coverage plugins load.
//
// The file is a text header, a module table in text and a table of
// basic blocks in binary:
//
//	DRCOV VERSION: 2
//	DRCOV FLAVOR: rspstub
//	Module Table: version 2, count N
//	Columns: id, base, end, entry, checksum, timestamp, path
//	 0, 0x0000000140000000, 0x000000014003e000, 0x0000000140001500, 0x00000000, 0x6571c2a1, /path/prog.exe
//	...
//	BB Table: M bbs
//	M records of 8 bytes, little-endian: u32 start (offset from the
//	module's base), u16 size, u16 module id
package drcov

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// Module is one row of the module table.
type Module struct {
	Base, End, Entry    uint64
	Checksum, TimeStamp uint32
	Path                string
}

// Block is one executed basic block of a module.
type Block struct {
	Module int    // index in the module table
	Offset uint32 // from the module's base
	Size   uint16
}

// Write writes the modules and blocks (blocks naming a module out of
// range are left out).
func Write(w io.Writer, flavor string, mods []Module, blocks []Block) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "DRCOV VERSION: 2\nDRCOV FLAVOR: %s\n", flavor)
	fmt.Fprintf(bw, "Module Table: version 2, count %d\n", len(mods))
	fmt.Fprintf(bw, "Columns: id, base, end, entry, checksum, timestamp, path\n")
	for i, m := range mods {
		fmt.Fprintf(bw, "%2d, %#016x, %#016x, %#016x, %#08x, %#08x, %s\n",
			i, m.Base, m.End, m.Entry, m.Checksum, m.TimeStamp, m.Path)
	}
	var ok []Block
	for _, b := range blocks {
		if b.Module >= 0 && b.Module < len(mods) && b.Module <= 0xffff {
			ok = append(ok, b)
		}
	}
	sort.Slice(ok, func(i, j int) bool {
		if ok[i].Module != ok[j].Module {
			return ok[i].Module < ok[j].Module
		}
		return ok[i].Offset < ok[j].Offset
	})
	fmt.Fprintf(bw, "BB Table: %d bbs\n", len(ok))
	var rec [8]byte
	for _, b := range ok {
		binary.LittleEndian.PutUint32(rec[0:], b.Offset)
		binary.LittleEndian.PutUint16(rec[4:], b.Size)
		binary.LittleEndian.PutUint16(rec[6:], uint16(b.Module))
		bw.Write(rec[:])
	}
	return bw.Flush()
}
