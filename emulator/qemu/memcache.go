package qemu

import "encoding/binary"

// Memory cache. At every stop a debugger reads the same few bytes
// again and again: GDB's stepi reads the byte at pc four times and the
// function's first 64 bytes once (prologue analysis), LLDB reads the
// stack above sp and the code at pc. Each read costs QEMU a round trip
// and, through us, a hop more. While the guest stays stopped its memory
// cannot change, so the target keeps what it read in blocks of memBlock
// bytes, read whole around the debugger's request, and answers later
// reads inside them itself.
//
// What may be read ahead is bounded by what is known to be memory:
//   - in system mode only the page holding the stopped vCPU's pc and
//     the one holding its sp: a guest executes from and pushes to RAM
//     (or ROM), while any other address may be a device's registers,
//     where a read the debugger did not ask for has effects of its own.
//     Both come from the register cache; with no registers held nothing
//     is cached. Memory is translated by the selected vCPU, so the cache
//     is used only while that is the vCPU that stopped.
//   - in user mode any page, while the program has one thread: QEMU
//     stops only the thread that reports, so another would change
//     memory under the cache.
//
// After a single step, the block around the previous pc is asked for
// together with the prefetched registers (prefetch.go), so the reads of
// the code at the new pc cost QEMU no round trip of their own.
//
// Everything that can change memory, or what an address means, drops
// the cache: a resume (the register cache's invalidate), a register
// write (cr3), a memory write, another vCPU selected, a QEMU monitor
// command. A block QEMU cannot read whole is not kept: the request is
// then sent as it came, so unreadable memory answers exactly as it did
// without the cache.

const (
	memBlock  = 1024 // bytes per block, aligned; a request longer than this bypasses the cache
	memBlocks = 8    // blocks kept per stop
	pageSize  = 4096
)

type memEntry struct {
	addr uint64 // block address, aligned to memBlock
	data [memBlock]byte
}

type memCache struct {
	n            int // e[:n] hold this stop's blocks
	next         int // the slot the next block replaces once all are used
	e            [memBlocks]memEntry
	span         [2 * memBlock]byte // a read of up to two blocks
	hits, misses uint64
}

// drop empties the cache.
func (m *memCache) drop() { m.n, m.next = 0, 0 }

// find returns the block at addr, or nil.
func (m *memCache) find(addr uint64) *memEntry {
	for i := 0; i < m.n; i++ {
		if m.e[i].addr == addr {
			return &m.e[i]
		}
	}
	return nil
}

// put stores a block read from QEMU.
func (m *memCache) put(addr uint64, data []byte) {
	var e *memEntry
	if m.n < memBlocks {
		e = &m.e[m.n]
		m.n++
	} else {
		e = &m.e[m.next]
		m.next = (m.next + 1) % memBlocks
	}
	e.addr = addr
	copy(e.data[:], data)
}

// cacheablePage reports whether the page at page (aligned) may be read
// ahead and kept at this stop.
func (t *Target) cacheablePage(page uint64) bool {
	if t.mode == ModeUser {
		return len(t.threads) <= 1
	}
	tid := t.last.Thread
	if tid <= 0 || t.gsel != tid || !t.cacheValid(tid) {
		return false
	}
	pc := t.desc.Registers[t.desc.PC]
	sp := t.desc.Registers[t.desc.SP]
	if pc.Size() != 8 || sp.Size() != 8 {
		return false
	}
	pcv := binary.LittleEndian.Uint64(t.cache[pc.Offset:])
	spv := binary.LittleEndian.Uint64(t.cache[sp.Offset:])
	return page == pcv&^(pageSize-1) || page == spv&^(pageSize-1)
}

// cachedPC returns the pc of the thread that stopped when the register
// cache holds it; tid is 0 otherwise.
func (t *Target) cachedPC() (pc uint64, tid int) {
	tid = t.last.Thread
	r := t.desc.Registers[t.desc.PC]
	if tid <= 0 || !t.cacheValid(tid) || r.Size() != 8 {
		return 0, 0
	}
	return binary.LittleEndian.Uint64(t.cache[r.Offset:]), tid
}

// readCached answers a read from the cache, reading the blocks it
// covers from QEMU first when they are cacheable; ok is false when the
// request must go to QEMU as it came.
func (t *Target) readCached(addr uint64, p []byte) (ok bool) {
	end := addr + uint64(len(p))
	if len(p) == 0 || len(p) > memBlock || end < addr {
		return false
	}
	first, last := addr&^(memBlock-1), (end-1)&^(memBlock-1)
	m := &t.mem
	var missFrom uint64 // the first block to read
	missing := 0        // how many blocks to read (at most two)
	for b := first; ; b += memBlock {
		if !t.cacheablePage(b &^ (pageSize - 1)) {
			return false
		}
		if m.find(b) == nil {
			if missing == 0 {
				missFrom = b
			}
			missing = int((b-missFrom)/memBlock) + 1
		}
		if b == last {
			break
		}
	}
	if missing > 0 {
		span := m.span[:missing*memBlock]
		if n, err := t.c.ReadMemory(missFrom, span); err != nil || n != len(span) {
			return false // asked again as it came: the same answer as without the cache
		}
		m.misses++
		for i := 0; i < missing; i++ {
			if b := missFrom + uint64(i)*memBlock; m.find(b) == nil {
				m.put(b, span[i*memBlock:])
			}
		}
	} else {
		m.hits++
	}
	for b := first; ; b += memBlock {
		e := m.find(b)
		if e == nil {
			return false // cannot happen: both blocks fit in the cache
		}
		lo := max(addr, b)
		hi := min(end-1, b+memBlock-1) // inclusive: b+memBlock may wrap
		copy(p[lo-addr:hi-addr+1], e.data[lo-b:hi-b+1])
		if b == last {
			break
		}
	}
	return true
}
