package unwind

import (
	"bytes"
	"debug/pe"
	"fmt"
	"os"
)

// mapPE lays a PE file out as the loader would map it at its preferred
// base: headers, then each section at its virtual address. Relocations are
// not applied; unwinding uses RVAs and relative branches only.
func mapPE(path string) (Module, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Module{}, nil, err
	}
	f, err := pe.NewFile(bytes.NewReader(raw))
	if err != nil {
		return Module{}, nil, err
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		return Module{}, nil, fmt.Errorf("%s: not PE32+", path)
	}
	if oh.SizeOfImage > 1<<30 {
		return Module{}, nil, fmt.Errorf("%s: SizeOfImage %#x", path, oh.SizeOfImage)
	}
	img := make([]byte, oh.SizeOfImage)
	copy(img, raw[:min(int(oh.SizeOfHeaders), len(raw))])
	for _, s := range f.Sections {
		n := min(s.VirtualSize, s.Size)
		if s.VirtualSize == 0 {
			n = s.Size
		}
		if uint64(s.Offset)+uint64(n) > uint64(len(raw)) || uint64(s.VirtualAddress)+uint64(n) > uint64(len(img)) {
			continue
		}
		copy(img[s.VirtualAddress:], raw[s.Offset:s.Offset+n])
	}
	return Module{Name: path, Base: oh.ImageBase, Size: uint64(oh.SizeOfImage)}, img, nil
}
