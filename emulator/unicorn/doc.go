// Package unicorn runs an x86-64 guest on Debian's libunicorn 2.0.1 and
// gives a debugger what it needs: memory and registers, run, step, range
// step, interrupt, breakpoints, watchpoints, trap ranges, exact stop PCs
// for faults, and a shadow call stack. It is the project's only cgo
// package; the upstream Go binding is not available here.
//
// # Shape
//
// The hot state lives in C (machine.c): the stop record, the breakpoint
// table, the watch table, the trap ranges and the shadow stack. Every
// Unicorn callback is a C function that records what happened and calls
// uc_emu_stop. Go calls into C once per Run/Step/RangeStep and reads the
// stop record afterwards; nothing calls back into Go while the guest runs.
// ReadContext and WriteContext move every register (GPRs, RIP, RFLAGS,
// selectors, FS/GS base, x87, SSE, MXCSR) in one crossing, through a C
// struct with the same layout as Context (checked at compile time).
//
// # Translation blocks and hooks
//
// Unicorn compiles guest code into translation blocks (TBs) and decides at
// translation time whether an instruction calls the code hooks. Measured on
// 2.0.1 (contrary to an earlier note): a hook added after a block was
// translated never fires in that block, and a deleted hook keeps its
// helper call in already translated code. So every hook change invalidates
// the code it concerns:
//
//   - a breakpoint or trap hook drops the blocks covering its addresses
//     (uc_ctl_remove_cache, a few microseconds);
//   - a hook on every address (the tracer, the shadow stack's block hook,
//     watchpoint memory hooks) drops the blocks of every mapped region
//     (invalidate_all: about 1 ms per 256 MB mapped).
//
// uc_ctl_flush_tlb (UC_CTL_TB_FLUSH) is never used: it costs 0.1 s, and
// 2.6 s the first time, per machine. For the same reason uc_emu_start is
// never called with count > 0: switching back to count 0 flushes the whole
// cache inside libunicorn.
//
// # Breakpoints
//
// A breakpoint is a UC_HOOK_CODE hook with begin == end == its address;
// code elsewhere never calls it, so a thousand breakpoints at addresses
// that are not reached cost nothing measurable (BenchmarkOverhead). The
// hook sits in a C table with "sw", "hw" and "tmp" flags; removing a
// breakpoint clears a flag and keeps the hook, so GDB's habit of removing
// every breakpoint after each stop and inserting them again before each
// resume costs a table lookup. Idle hooks are deleted for real when more
// than 256 pile up. The callback stops before the instruction: RIP is the
// breakpoint address and the instruction has not run.
//
// Unicorn calls the code hook of the first instruction again when
// emulation resumes there, so a resume from a breakpoint would stop at
// once. rs_run arms a one-shot skip for a breakpoint at the start PC; the
// first hit there is ignored, later ones (the next loop iteration) count.
//
// # Stepping
//
// Step decodes the instruction at RIP (golang.org/x/arch/x86/x86asm) and
// computes where it can go: the next instruction, a direct or conditional
// branch target, an indirect target read from the registers or memory, the
// return address on the stack. Those one or two addresses get temporary
// breakpoints (the "tmp" flag of the same table), so a step costs a decode
// and one uc_emu_start, and the rest of the code keeps running at full
// speed afterwards. Instructions the decoder does not follow (far
// transfers, iret, unknown bytes) fall back to the tracer: a C code hook on
// every address that stops before the second instruction it sees. The
// tracer stays installed across consecutive tracer steps and is removed by
// the next plain Run. RangeStep uses the tracer, stopping at the first
// instruction outside [start, end).
//
// Single-stepping with the trap flag does not work in 2.0.1: the #DB
// exception is delivered through the (absent) IDT instead of the
// interrupt hook.
//
// # Watchpoints
//
// Write watchpoints cost nothing until their page is written (page
// mode, watch.c). The machine gives the guest page tables of its own:
// every address maps read-write through 1 GiB pages except the pages that
// hold watched bytes, which are read-only through a 4 KiB entry each.
// libunicorn maps every guest address to the same physical address
// whatever an entry says (excp_helper.c: "indentity map"), so entries
// carry permissions only; the tables live in the last MiB below 1 TiB
// (entries must point below 2^40), which Map refuses. CR0.PG, CR0.WP and
// CR4.PAE are written as values: libunicorn neither checks nor flushes
// anything on such writes, and uc_ctl_flush_tlb flushes translated code,
// not the TLB, so adding protection makes the next run flip the
// permissions of a page of its own, a change of the memory map after
// which QEMU flushes its TLB (about 125 us with 300 regions; lifting
// protection needs no flush). Reads, instruction fetches and writes to
// other pages run at full speed, translated code included.
//
// A write to a protected page raises a page fault (#PF, vector 14) from
// the TLB fill, and QEMU restores the state to the start of the faulting
// instruction from the host PC, flags included; the interrupt hook gets
// it with RIP exact. libunicorn's own protection faults cannot do that:
// they leave RIP at the start of the block and the flags stale (see
// "Faults and their PC"). The instruction then runs in the twin, a second
// libunicorn engine over the same host memory without page tables, with a
// memory hook that sees each address written and a code hook that stops it
// before the next instruction (or the next iteration of a rep
// instruction). Its registers (general, RIP, RFLAGS, FS/GS base, and the
// x87/SSE state when the opcode may use it) come back, and the run goes
// on, or stops with StopWatch after the instruction if it wrote a watched
// byte: PC is the next instruction, AccessPC the writer, Addr the first
// watched byte written. If the twin faults or meets an exception, the
// machine stops on the instruction with that stop and an exact PC, as it
// would have without the watchpoint. The machine's translations of the
// written bytes are dropped (self-modifying code), and the twin's
// translation of an address is dropped when its bytes change.
//
// QEMU records the page fault as in flight until it is delivered, which
// the hook prevents, and the next one would become a double fault: the
// registers are written into the context saved at run start (not into
// the machine: writing RIP through uc_reg_write makes libunicorn cancel a
// stop asked for in the same hook) and that context replaces the
// machine's. After the CPU exception stops that restore the creation-time
// context (see "Faults and their PC"), the paging registers are set again.
//
// GDB removes every watchpoint at a stop and inserts it again before
// resuming: a removed watchpoint keeps its page protected (writes to it
// fault and miss) until it has stayed removed over 4 run starts, so the
// cycle costs no flush. A write that misses the watched bytes costs
// 1.5-3 us (BenchmarkWatchMiss); when such writes to one page take more
// than half of a run that had at least 1024 of them (a local variable
// next to a busy stack, a global beside a hot one), its watchpoints move
// to hook mode mid-run and stay there: measured on a store loop,
// BenchmarkOverhead/watch-store-same-page.
//
// Read and access watchpoints, and demoted write watchpoints, use hook
// mode: a UC_HOOK_MEM_READ and/or UC_HOOK_MEM_WRITE hook on the range
// (widened by 63 bytes downwards, because Unicorn compares only the first
// byte of an access; the callback checks the real overlap). The memory
// hook runs before the access and cannot stop between instructions, so
// while such watchpoints exist the tracer runs too: the hook marks a
// pending hit and the tracer stops before the next instruction. Reads
// cannot use page mode: a page without read permission also refuses
// instruction fetches, and libunicorn fetches to look up code it drops
// (uc_ctl_remove_cache, hook deletion), leaving a page fault recorded in
// flight outside any run. Hook mode costs a C call per instruction and the
// slow memory path for every load and store (about 4-5x on any code,
// BenchmarkOverhead/rwatch-loop).
//
// # Faults and their PC
//
// Faults come from a UC_HOOK_MEM_INVALID hook (address, access, size and
// the value of a faulting write), the interrupt hook (#DE -> StopDivide,
// int3 -> StopInt3, other vectors -> StopException), the invalid
// instruction hook and uc_emu_start's error code. The machine keeps
// working after any of them: RIP is left on the faulting instruction and
// the debugger may fix memory, move RIP or step again.
//
// After a data fault libunicorn leaves RIP at the start of the faulting
// translation block, and the block's earlier instructions have already
// run. Two remedies are implemented and measured:
//
//   - SetPCSync(true) installs a UC_HOOK_MEM_READ|WRITE hook on one
//     non-canonical address. Any memory hook makes the translator store RIP
//     before every memory access, so the fault PC is always exact. It also
//     moves every load and store to the slow path: loads run 5-7x slower
//     (BenchmarkOverhead/sync-load), so it is off by default.
//   - By default Run decodes the block from its start and picks the first
//     instruction whose memory operand, evaluated with the current
//     registers (which are the state just before the faulting instruction),
//     covers the fault address with the right access (explicit operands,
//     push/pop/call/ret/leave stack accesses, string instructions). For a
//     faulting write the stored value must also match a plain store's
//     source. Its limit: an earlier instruction of the same block with the
//     same address expression whose registers changed in between (mov rax,
//     [rbx]; add rbx, N; mov rcx, [rbx]) is indistinguishable from the
//     registers alone, and the earlier one is reported
//     (TestFaultPCAmbiguous). Whenever a second instruction of the block
//     also matches, or none does (PC stays at the block start), the stop
//     has Inexact set. Fetch faults are always exact: PC is the target
//     address.
//
// int3 stops with PC after the int3 (as on hardware; Addr is the int3
// itself), so continuing does not execute it again. #DE and #UD stop with
// PC at the faulting instruction (QEMU restores it for exceptions).
// hlt stops with StopHalt and PC after it. StopReason.GDBSignal gives the
// signal a stub reports (SIGSEGV, SIGILL, SIGFPE, SIGINT, else SIGTRAP).
//
// # Interrupt
//
// Interrupt calls uc_emu_stop from any goroutine; TCG checks the exit
// request at the start of every block, so even a `jmp $` loop returns at
// once. uc_emu_start clears a stop request that arrives before it has
// started, so Interrupt repeats the request every 5 ms until that run
// returns; a run generation number keeps a late repeat from stopping the
// next run. No polling happens unless Interrupt was called.
//
// # Shadow call stack
//
// SetShadowStack(true) installs a C UC_HOOK_BLOCK callback. Calls and rets
// always end a translation block, so at each block start the callback
// drops frames whose return-address slot is below RSP (returns, tail
// jumps, longjmp and exception unwinds alike), and recognises a call when
// the value at [RSP] equals the end of the previous block and the bytes
// before it encode a call (E8 rel32 or FF /2); only block starts where RSP
// went down need that memory read. Frames are exact after every call and
// ret; a stack cut that is not a ret is seen at the next block start. The
// cost is a C call per executed block: about 1.7x on a call-heavy loop and
// 4x on a two-instruction loop (one block per iteration).
//
// # libunicorn 2.0.1 notes
//
//   - Stores are slow in 2.0.1 whatever the hooks: a loop with one store
//     per iteration runs about 15 M instructions/s against 500-900 M
//     without it. Our machine adds nothing to that (store-vs-raw).
//   - The x87 control word and MXCSR start at zero (all exceptions
//     unmasked); New sets the power-on values 0x37f and 0x1f80.
//   - AVX is not emulated (QEMU 5 TCG), so HasAVX is false and YMMH zero.
//   - uc_emu_start's "until" stops at address 0 when 0 is given; New
//     enables Unicorn exits with an empty list so a jump to NULL faults.
package unicorn
