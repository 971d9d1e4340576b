package unicorn

import "golang.org/x/arch/x86/x86asm"

// Block analysis for exact fault positions (see "Faults and their PC" in
// doc.go). libunicorn reports a data fault with RIP at the last point
// where the translated code stored it: the start of the translation
// block, or an instruction with a code hook. planSyncs picks, for one
// newly translated block, the instructions that need such a hook so that
// the fault decoder (faultpc.go), scanning forward from RIP and taking the
// first instruction whose memory operand covers the fault address, always
// lands on the faulting instruction, and so that the lazily computed
// flags are current at it.
//
// libunicorn does not store RIP when it enters a block through a chained
// jump (a direct jump to the same page, once taken), so RIP may be left
// in an earlier block: the first memory instruction of every block is a
// sync point, unless it is the block's first instruction (then the fault
// decoder finds the block by following the chained jumps from RIP, and
// flags the fault if candidates turn up in more than one block). A
// segment runs from one sync point (or the block start) to the next.
// Inside a segment, for every memory instruction j and every earlier one
// i, the decoder must not mistake i for j when j faults. It evaluates i's
// address with the registers j started with. If none of the registers in
// i's address changed between i and j, that address is the one i used,
// successfully, so a fault of the same kind cannot be there. If one did
// change and both addresses use the same registers, they differ by the
// displacement only, and the ranges are compared. Anything else might
// coincide, and j becomes a sync point. So does a memory instruction the
// model does not describe (and the next memory instruction after it: the
// decoder takes an undescribed instruction at RIP to be the faulting one),
// and a memory instruction after a flag-setting one in its segment
// (libunicorn keeps the flags' kind of computation in the translator and
// stores it only at block ends and hooks; a fault between reads stale
// flags).

// maxBlockInsns bounds the decoding of one block (TCG stops at 512).
const maxBlockInsns = 512

// maxSyncs is how many single-address sync points one block gets; a
// block needing more is synced from its first point to its end instead.
const maxSyncs = 64

type segEntry struct {
	acc     []memAccess
	written regSet // registers written since (and by) this instruction
}

// planSyncs returns the sync points of the block of code at pc, which
// libunicorn translated as icount instructions: the addresses that need a
// hook, or, when from != 0, every instruction from from to the end of the
// block (a part the decoder cannot follow, a block where x86asm and
// libunicorn do not agree on the instructions, or too many points). from
// is never pc itself (see the first memory instruction below).
func planSyncs(code []byte, pc uint64, icount int) (points []uint64, from uint64) {
	// all syncs every instruction from the first point chosen so far, or
	// from at, whichever is first, to the end; but not the first one.
	var points0 []uint64 // points, as far as chosen
	all := func(at uint64) ([]uint64, uint64) {
		if len(points0) > 0 && points0[0] < at {
			at = points0[0]
		}
		return nil, max(at, pc+1)
	}
	var seg []segEntry
	taint, dirty, seenMem := false, false, false
	off := 0
	for k := 0; off < len(code) && k < maxBlockInsns; k++ {
		at := pc + uint64(off)
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil || inst.Len <= 0 || off+inst.Len > len(code) {
			// libunicorn decoded what x86asm cannot: hook it all.
			return all(at)
		}
		acc, modeled := accessesOf(inst)
		mem := !modeled || len(acc) > 0
		if mem && k > 0 {
			// The first memory instruction is a sync point too: libunicorn
			// does not store RIP when it enters a block by a chained jump.
			// Never the block's first instruction: uc_hook_del drops the
			// blocks that start in the hook's range, so the block would be
			// translated again and again.
			need := !seenMem || taint || dirty || !modeled
			for i := 0; !need && i < len(seg); i++ {
				need = confusable(seg[i], acc)
			}
			if need {
				if len(points) == maxSyncs {
					return all(at)
				}
				points = append(points, at)
				points0 = points
				seg, taint, dirty = seg[:0], false, false
			}
		}
		if mem {
			seenMem = true
			if modeled {
				seg = append(seg, segEntry{acc: acc})
			} else {
				taint = true
			}
		}
		w := regsWritten(inst)
		for i := range seg {
			seg[i].written |= w
		}
		if setsFlags(inst) {
			dirty = true
		}
		off += inst.Len
		if k+1 == icount && off < len(code) {
			return all(pc)
		}
		if off == len(code) && k+1 != icount && k+2 != icount {
			// Not the same instructions (one more is an exit's halt).
			return all(pc)
		}
	}
	return points, 0
}

// confusable reports whether the decoder could take earlier instruction e
// for a later one with accesses acc that faulted.
func confusable(e segEntry, acc []memAccess) bool {
	for _, ai := range e.acc {
		for _, aj := range acc {
			if !(ai.read && aj.read || ai.write && aj.write) {
				continue
			}
			if ai.regs()&e.written == 0 {
				continue // i used this very address, successfully
			}
			if !ai.sameExpr(aj) {
				return true
			}
			// The fault address x is in [ea_j, ea_j+size_j); i matches
			// when x is in [ea_i, ea_i+size_i), ea_i = ea_j + d.
			d := ai.disp - aj.disp
			if ai.addr32 {
				d = int64(int32(uint32(d)))
			}
			if d < int64(aj.size) && d+int64(ai.size) > 0 {
				return true
			}
		}
	}
	return false
}
