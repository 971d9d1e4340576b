package ucwin

import (
	"github.com/rspstub/rspstub/internal/drcov"
	"github.com/rspstub/rspstub/internal/peimage"
)

// Coverage (Config.Coverage): the machine records every translation
// block the guest executes (unicorn.Machine.SetCoverage, a C block hook);
// at Close the blocks inside loaded modules are written as drcov, module
// by module, the modules named by their host file when there is one
// (the name Lighthouse and Cartographer match against the database) and
// their Windows path otherwise. Blocks outside any module (code the
// program generated) are left out. A restart folds the finished run's
// blocks in first, so the file covers every run of the session.

// covModule is one module's blocks over all runs.
type covModule struct {
	mod    drcov.Module
	blocks map[uint32]uint16
}

type coverage struct {
	mods  []*covModule
	index map[string]*covModule // by path and base
	lost  bool
}

// startCoverage turns the recording on in this run's machine.
func (t *Target) startCoverage() error {
	if t.cfg.Coverage == nil {
		return nil
	}
	if t.cov == nil {
		t.cov = &coverage{index: map[string]*covModule{}}
	}
	return t.m.SetCoverage(true)
}

// foldCoverage adds this run's blocks to the totals.
func (t *Target) foldCoverage() {
	c := t.cov
	if c == nil || t.m == nil {
		return
	}
	blocks, lost := t.m.Coverage()
	c.lost = c.lost || lost
	mods := t.modules()
	for _, m := range mods {
		path := m.HostPath
		if path == "" {
			path = m.Path
		}
		key := path + "@" + hexKey(m.Base)
		if c.index[key] != nil {
			continue
		}
		d := t.dumpModule(m)
		entry := uint64(0)
		if f, err := peimage.ReadNTHeaders(t.m, m.Base); err == nil && f.AddressOfEntryPoint != 0 {
			entry = m.Base + uint64(f.AddressOfEntryPoint)
		}
		cm := &covModule{mod: drcov.Module{Base: m.Base, End: m.Base + m.Size, Entry: entry,
			Checksum: d.CheckSum, TimeStamp: d.TimeStamp, Path: path}, blocks: map[uint32]uint16{}}
		c.index[key] = cm
		c.mods = append(c.mods, cm)
	}
	// Blocks are sorted; so are modules by base once sorted here.
	for _, b := range blocks {
		for _, cm := range c.mods {
			if b.Addr >= cm.mod.Base && b.Addr < cm.mod.End {
				size := uint16(min(b.Size, 0xffff))
				off := uint32(b.Addr - cm.mod.Base)
				if size > cm.blocks[off] {
					cm.blocks[off] = size
				}
				break
			}
		}
	}
}

func hexKey(v uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// writeCoverage writes the drcov file (Close).
func (t *Target) writeCoverage() error {
	c := t.cov
	if c == nil {
		return nil
	}
	t.foldCoverage()
	t.cov = nil
	mods := make([]drcov.Module, len(c.mods))
	var blocks []drcov.Block
	for i, cm := range c.mods {
		mods[i] = cm.mod
		for off, size := range cm.blocks {
			blocks = append(blocks, drcov.Block{Module: i, Offset: off, Size: size})
		}
	}
	if c.lost && t.cfg.Logger != nil {
		t.cfg.Logger.Warn("coverage: more than 2^20 distinct blocks; later new ones were not recorded")
	}
	return drcov.Write(t.cfg.Coverage, "rspstub", mods, blocks)
}
