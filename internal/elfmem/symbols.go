package elfmem

import (
	"encoding/binary"
	"fmt"
)

// Symbol is a defined function symbol at its runtime address.
type Symbol struct {
	Name  string
	Addr  uint64
	Size  uint64
	IsFun bool
}

// DynSymbols reads the dynamic symbol table of a loaded module: DT_SYMTAB
// and DT_STRTAB give where, and the number of entries (which no DT_* tag
// records) comes from DT_GNU_HASH (the highest bucket's chain end) or
// DT_HASH (nchain). Only defined symbols with a non-empty name are
// returned, at runtime addresses.
func (img *Image) DynSymbols(mem Memory, dyn []Dyn) ([]Symbol, error) {
	symtab, ok1 := Lookup(dyn, DT_SYMTAB)
	strtab, ok2 := Lookup(dyn, DT_STRTAB)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: no DT_SYMTAB/DT_STRTAB", ErrBadImage)
	}
	symtab, strtab = img.Ptr(symtab), img.Ptr(strtab)
	if ent, ok := Lookup(dyn, DT_SYMENT); ok && ent != symSize {
		return nil, fmt.Errorf("%w: DT_SYMENT %d", ErrBadImage, ent)
	}
	strsz, ok := Lookup(dyn, DT_STRSZ)
	if !ok || strsz > MaxStrtab {
		return nil, fmt.Errorf("%w: DT_STRSZ %#x", ErrBadImage, strsz)
	}
	var count uint64
	var err error
	if h, ok := Lookup(dyn, DT_GNU_HASH); ok {
		count, err = gnuHashCount(mem, img.Ptr(h))
	} else if h, ok := Lookup(dyn, DT_HASH); ok {
		var b [8]byte
		if err = Read(mem, "DT_HASH header", img.Ptr(h), b[:]); err == nil {
			count = uint64(binary.LittleEndian.Uint32(b[4:]))
		}
	} else {
		return nil, fmt.Errorf("%w: neither DT_GNU_HASH nor DT_HASH: the symbol count is unknown", ErrBadImage)
	}
	if err != nil {
		return nil, err
	}
	if count > MaxSymbols {
		count = MaxSymbols
	}
	strs := make([]byte, strsz)
	if err := Read(mem, "dynamic string table", strtab, strs); err != nil {
		return nil, err
	}
	raw := make([]byte, count*symSize)
	if err := Read(mem, "dynamic symbol table", symtab, raw); err != nil {
		return nil, err
	}
	var out []Symbol
	for i := uint64(1); i < count; i++ {
		s := raw[i*symSize:]
		name := uint64(binary.LittleEndian.Uint32(s[0:]))
		info := s[4]
		shndx := binary.LittleEndian.Uint16(s[6:])
		value := binary.LittleEndian.Uint64(s[8:])
		size := binary.LittleEndian.Uint64(s[16:])
		if shndx == SHN_UNDEF || value == 0 || name == 0 || name >= strsz {
			continue
		}
		end := name
		for end < strsz && strs[end] != 0 {
			end++
		}
		typ := info & 0xf
		out = append(out, Symbol{
			Name:  string(strs[name:end]),
			Addr:  img.Bias + value,
			Size:  size,
			IsFun: typ == STT_FUNC || typ == STT_GNU_IFUNC,
		})
	}
	return out, nil
}

// gnuHashCount returns the number of dynamic symbols from a DT_GNU_HASH
// table:
//
//	u32 nbuckets, u32 symoffset, u32 bloom_size, u32 bloom_shift
//	u64 bloom[bloom_size]
//	u32 buckets[nbuckets]       first symbol index of each bucket
//	u32 chain[]                 from symoffset; bit 0 ends a bucket's chain
//
// The count is one past the end of the chain of the highest bucket.
func gnuHashCount(mem Memory, addr uint64) (uint64, error) {
	var h [16]byte
	if err := Read(mem, "DT_GNU_HASH header", addr, h[:]); err != nil {
		return 0, err
	}
	nb := uint64(binary.LittleEndian.Uint32(h[0:]))
	symoff := uint64(binary.LittleEndian.Uint32(h[4:]))
	bloom := uint64(binary.LittleEndian.Uint32(h[8:]))
	if nb == 0 || nb > MaxSymbols || bloom > MaxSymbols {
		return 0, fmt.Errorf("%w: DT_GNU_HASH with %d buckets, %d bloom words", ErrBadImage, nb, bloom)
	}
	bucketsAt := addr + 16 + bloom*8
	b := make([]byte, nb*4)
	if err := Read(mem, "DT_GNU_HASH buckets", bucketsAt, b); err != nil {
		return 0, err
	}
	var last uint64
	for i := uint64(0); i < nb; i++ {
		last = max(last, uint64(binary.LittleEndian.Uint32(b[i*4:])))
	}
	if last < symoff {
		return symoff, nil // no hashed symbols
	}
	chainAt := bucketsAt + nb*4
	var w [4]byte
	for i := last; i < symoff+MaxSymbols; i++ {
		if err := Read(mem, "DT_GNU_HASH chain", chainAt+(i-symoff)*4, w[:]); err != nil {
			return 0, err
		}
		if binary.LittleEndian.Uint32(w[:])&1 != 0 {
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: DT_GNU_HASH chain does not end", ErrBadImage)
}
