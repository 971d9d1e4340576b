package guest

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/rspstub/rspstub/guest/peload"
	"github.com/rspstub/rspstub/guest/process"
)

// This file generates the synthesized system DLLs as real PE32+ images.
// Layout of every generated image (file layout == memory layout, so the
// bytes served to a debugger through ModuleImage parse like a file on disk):
//
//	RVA 0x0000  headers: DOS header (e_lfanew=0x80), "PE\0\0", COFF header,
//	            optional header (PE32+), section table
//	RVA 0x1000  .text   code routines (RtlUserThreadStart...), then one
//	                    16-byte stub per exported function (the trap range)
//	next page   .data   pointer slots used by the code routines, then data
//	                    exports (_iob, _fmode, errno...)
//	next page   .rdata  export directory (names, ordinals, forwarder strings)
//	            .xdata  UNWIND_INFO records
//	next page   .pdata  RUNTIME_FUNCTION table sorted by address
//
// Every stub is two functions, so that a debugger's "break WriteFile"
// lands on the API entry itself:
//
//	+0  F4            hlt               <- API entry: the trap address. No
//	                                       RUNTIME_FUNCTION covers it: a leaf,
//	                                       whose prolog a debugger skips by 0
//	                                       bytes (RSP points at the return
//	                                       address, as at any call target)
//	+1  48 83 EC 28   sub rsp, 28h      <- continuation function, with its own
//	                                       RUNTIME_FUNCTION [+1, +16) and a
//	                                       4-byte UWOP_ALLOC_SMALL prolog
//	+5  F4            hlt               <- return address of guest callbacks
//	+6  48 83 C4 28   add rsp, 28h
//	+10 C3            ret
//	+11 CC x5         padding
//
// When the Go implementation calls back into guest code, it builds the
// frame the continuation's prolog would have built (RSP 28h below the API
// entry's) and pushes +5 as the return address, so an unwinder sees
// "sub rsp,28h" done there and walks on to the API's caller, and a
// backtrace from inside a callback reads "...callback, msvcrt!qsort+5,
// caller...".

const (
	stubSize      = 16
	stubRetOffset = 5
	textRVA       = 0x1000
)

var stubCode = [stubSize]byte{0xF4, 0x48, 0x83, 0xEC, 0x28, 0xF4, 0x48, 0x83, 0xC4, 0x28, 0xC3, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC}

// unwindAllocSmall is an UNWIND_INFO v1 for a prolog that is exactly
// "sub rsp, n" (4 bytes, 8 <= n <= 128, n%8 == 0):
//
//	01           version 1, no flags
//	04           prolog size
//	01           one unwind code
//	00           no frame register
//	04 xx        at offset 4: UWOP_ALLOC_SMALL, info = n/8-1
//	00 00        padding to an even number of codes
func unwindAllocSmall(n int) []byte {
	return []byte{0x01, 0x04, 0x01, 0x00, 0x04, byte(0x02 | (n/8-1)<<4), 0x00, 0x00}
}

// codeFunc is hand-assembled machine code with its unwind information.
type codeFunc struct {
	name   string
	export bool
	unwind []byte
	// emit returns the code; slot gives the VA of a pointer slot in .data
	// and here is the VA of the function's first byte.
	emit func(here uint64, slot func(string) uint64) []byte
	size int
}

type dataExport struct {
	name   string
	size   int
	export bool
}

type synthSpec struct {
	name     string // canonical module name, e.g. "KERNEL32.dll"
	code     []codeFunc
	stubs    []string          // stub functions (exports)
	data     []dataExport      // data symbols in .data
	forwards map[string]string // export name -> "dll.name"
	slots    []string          // pointer slots "DLL!func", patched after all are built
}

// synthImage is a generated DLL.
type synthImage struct {
	spec      *synthSpec
	base      uint64
	image     []byte
	exports   map[string]uint32 // name -> RVA (functions and data)
	forwards  map[string]string
	byOrdinal []string // ordinal-1 -> name
	stubRVA   map[string]uint32
	stubStart uint32 // [stubStart, stubEnd) is the trap range
	stubEnd   uint32
	codeRVA   map[string]uint32
	dataRVA   map[string]uint32
	slotRVA   map[string]uint32
	sections  []peload.Section
}

const (
	scnCode     = 0x00000020
	scnInitData = 0x00000040
	scnUninit   = 0x00000080
	scnExec     = 0x20000000
	scnRead     = 0x40000000
	scnWrite    = 0x80000000
)

func alignUp32(v, a uint32) uint32 { return (v + a - 1) &^ (a - 1) }

// buildSynth lays out and generates one DLL at base.
func buildSynth(spec *synthSpec, base uint64) (*synthImage, error) {
	si := &synthImage{spec: spec, base: base, exports: map[string]uint32{}, forwards: map[string]string{},
		stubRVA: map[string]uint32{}, codeRVA: map[string]uint32{}, dataRVA: map[string]uint32{}, slotRVA: map[string]uint32{}}

	// .text
	off := uint32(textRVA)
	for _, f := range spec.code {
		si.codeRVA[f.name] = off
		off = alignUp32(off+uint32(f.size), 16)
	}
	si.stubStart = off
	stubs := append([]string(nil), spec.stubs...)
	sort.Strings(stubs)
	for _, s := range stubs {
		if _, dup := si.stubRVA[s]; dup {
			continue
		}
		si.stubRVA[s] = off
		off += stubSize
	}
	si.stubEnd = off
	textEnd := off
	if textEnd == textRVA {
		textEnd++ // keep a non-empty .text
	}

	// .data
	dataStart := alignUp32(textEnd, process.PageSize)
	off = dataStart
	for _, s := range spec.slots {
		si.slotRVA[s] = off
		off += 8
	}
	for _, d := range spec.data {
		off = alignUp32(off, 16)
		si.dataRVA[d.name] = off
		off += uint32(d.size)
	}
	dataEnd := off
	if dataEnd == dataStart {
		dataEnd += 8
	}

	// export table contents
	type exp struct {
		name string
		rva  uint32
		fwd  string
	}
	var exps []exp
	seen := map[string]bool{}
	add := func(e exp) {
		if !seen[e.name] {
			seen[e.name] = true
			exps = append(exps, e)
		}
	}
	for _, f := range spec.code {
		if f.export {
			add(exp{name: f.name, rva: si.codeRVA[f.name]})
		}
	}
	for _, s := range stubs {
		add(exp{name: s, rva: si.stubRVA[s]})
	}
	for _, d := range spec.data {
		if d.export {
			add(exp{name: d.name, rva: si.dataRVA[d.name]})
		}
	}
	for n, f := range spec.forwards {
		add(exp{name: n, fwd: f})
	}
	sort.Slice(exps, func(i, j int) bool { return exps[i].name < exps[j].name })

	// .rdata: export directory then .xdata
	rdataStart := alignUp32(dataEnd, process.PageSize)
	n := uint32(len(exps))
	edir := rdataStart
	eat := edir + 40
	enpt := eat + 4*n
	eord := enpt + 4*n
	strs := eord + 2*n
	var strBuf []byte
	strRVA := func(s string) uint32 {
		r := strs + uint32(len(strBuf))
		strBuf = append(strBuf, s...)
		strBuf = append(strBuf, 0)
		return r
	}
	dllNameRVA := strRVA(spec.name)
	nameRVAs := make([]uint32, n)
	funcRVAs := make([]uint32, n)
	for i, e := range exps {
		nameRVAs[i] = strRVA(e.name)
		if e.fwd != "" {
			funcRVAs[i] = strRVA(e.fwd)
			si.forwards[e.name] = e.fwd
		} else {
			funcRVAs[i] = e.rva
			si.exports[e.name] = e.rva
		}
		si.byOrdinal = append(si.byOrdinal, e.name)
	}
	exportEnd := strs + uint32(len(strBuf))
	xdata := alignUp32(exportEnd, 4)
	unwindRVA := map[string]uint32{}
	xoff := xdata
	var xbuf []byte
	stubUnwind := unwindAllocSmall(0x28)
	unwindFor := func(key string, b []byte) uint32 {
		if r, ok := unwindRVA[key]; ok {
			return r
		}
		r := xoff + uint32(len(xbuf))
		xbuf = append(xbuf, b...)
		unwindRVA[key] = r
		return r
	}
	type rf struct{ begin, end, unwind uint32 }
	var rfs []rf
	for _, f := range spec.code {
		if f.unwind == nil {
			continue // a leaf: no RUNTIME_FUNCTION
		}
		u := unwindFor("code:"+f.name, f.unwind)
		rfs = append(rfs, rf{si.codeRVA[f.name], si.codeRVA[f.name] + uint32(f.size), u})
	}
	if len(stubs) > 0 {
		u := unwindFor("stub", stubUnwind)
		for _, s := range stubs {
			r := si.stubRVA[s]
			if len(rfs) > 0 && rfs[len(rfs)-1].begin == r+1 {
				continue // an alias of the previous stub
			}
			rfs = append(rfs, rf{r + 1, r + stubSize, u}) // +0 is a leaf
		}
	}
	sort.Slice(rfs, func(i, j int) bool { return rfs[i].begin < rfs[j].begin })
	rdataEnd := xoff + uint32(len(xbuf))

	pdataStart := alignUp32(rdataEnd, process.PageSize)
	pdataEnd := pdataStart + 12*uint32(len(rfs))
	if len(rfs) == 0 {
		pdataEnd += 12
	}
	sizeOfImage := alignUp32(pdataEnd, process.PageSize)

	img := make([]byte, sizeOfImage)
	le := binary.LittleEndian

	// code
	slotVA := func(s string) uint64 {
		r, ok := si.slotRVA[s]
		if !ok {
			panic("synth: undeclared slot " + s) // programming error in a spec
		}
		return base + uint64(r)
	}
	for _, f := range spec.code {
		r := si.codeRVA[f.name]
		code := f.emit(base+uint64(r), slotVA)
		if len(code) != f.size {
			return nil, fmt.Errorf("synth %s!%s: code is %d bytes, declared %d", spec.name, f.name, len(code), f.size)
		}
		copy(img[r:], code)
	}
	for _, r := range si.stubRVA {
		copy(img[r:], stubCode[:])
	}
	// export directory
	le.PutUint32(img[edir+4:], 0) // TimeDateStamp
	le.PutUint32(img[edir+12:], dllNameRVA)
	le.PutUint32(img[edir+16:], 1) // Base
	le.PutUint32(img[edir+20:], n)
	le.PutUint32(img[edir+24:], n)
	le.PutUint32(img[edir+28:], eat)
	le.PutUint32(img[edir+32:], enpt)
	le.PutUint32(img[edir+36:], eord)
	for i := uint32(0); i < n; i++ {
		le.PutUint32(img[eat+4*i:], funcRVAs[i])
		le.PutUint32(img[enpt+4*i:], nameRVAs[i])
		le.PutUint16(img[eord+2*i:], uint16(i))
	}
	copy(img[strs:], strBuf)
	copy(img[xoff:], xbuf)
	for i, f := range rfs {
		o := pdataStart + 12*uint32(i)
		le.PutUint32(img[o:], f.begin)
		le.PutUint32(img[o+4:], f.end)
		le.PutUint32(img[o+8:], f.unwind)
	}

	si.sections = []peload.Section{
		{Name: ".text", RVA: textRVA, Size: textEnd - textRVA, Characteristics: scnCode | scnExec | scnRead},
		{Name: ".data", RVA: dataStart, Size: dataEnd - dataStart, Characteristics: scnInitData | scnRead | scnWrite},
		{Name: ".rdata", RVA: rdataStart, Size: rdataEnd - rdataStart, Characteristics: scnInitData | scnRead},
		{Name: ".pdata", RVA: pdataStart, Size: pdataEnd - pdataStart, Characteristics: scnInitData | scnRead},
	}

	// headers
	copy(img, "MZ")
	le.PutUint16(img[2:], 0x90)
	le.PutUint16(img[4:], 3)
	le.PutUint16(img[8:], 4)
	le.PutUint16(img[0x18:], 0x40)
	le.PutUint32(img[0x3C:], 0x80)
	copy(img[0x40:], "This program cannot be run in DOS mode.$ (rspstub synthesized image)")
	copy(img[0x80:], "PE\x00\x00")
	fh := 0x84
	le.PutUint16(img[fh:], 0x8664)
	le.PutUint16(img[fh+2:], uint16(len(si.sections)))
	le.PutUint16(img[fh+16:], 0xF0)
	le.PutUint16(img[fh+18:], 0x2022) // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE | DLL
	oh := fh + 20
	le.PutUint16(img[oh:], 0x20B)
	img[oh+2] = 14
	le.PutUint32(img[oh+4:], textEnd-textRVA)
	le.PutUint32(img[oh+8:], sizeOfImage-dataStart)
	le.PutUint32(img[oh+20:], textRVA)
	le.PutUint64(img[oh+24:], base)
	le.PutUint32(img[oh+32:], process.PageSize)
	le.PutUint32(img[oh+36:], process.PageSize)
	le.PutUint16(img[oh+40:], 10)
	le.PutUint16(img[oh+44:], 10)
	le.PutUint16(img[oh+48:], 10)
	le.PutUint32(img[oh+56:], sizeOfImage)
	le.PutUint32(img[oh+60:], process.PageSize)
	le.PutUint16(img[oh+68:], 3)
	le.PutUint16(img[oh+70:], 0x160)
	le.PutUint64(img[oh+72:], 0x40000)
	le.PutUint64(img[oh+80:], 0x1000)
	le.PutUint64(img[oh+88:], 0x100000)
	le.PutUint64(img[oh+96:], 0x1000)
	le.PutUint32(img[oh+108:], 16)
	dd := oh + 112
	le.PutUint32(img[dd+0:], edir) // export
	le.PutUint32(img[dd+4:], exportEnd-edir)
	le.PutUint32(img[dd+3*8:], pdataStart) // exception
	le.PutUint32(img[dd+3*8+4:], pdataEnd-pdataStart)
	sh := oh + 0xF0
	for i, s := range si.sections {
		o := sh + 40*i
		copy(img[o:o+8], s.Name)
		le.PutUint32(img[o+8:], s.Size)
		le.PutUint32(img[o+12:], s.RVA)
		le.PutUint32(img[o+16:], alignUp32(s.Size, process.PageSize))
		le.PutUint32(img[o+20:], s.RVA)
		le.PutUint32(img[o+36:], s.Characteristics)
	}
	si.image = img
	return si, nil
}
