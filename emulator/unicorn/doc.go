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
// helper call in already translated code, except in the blocks that start
// in the hook's range, which uc_hook_del drops. So every hook change
// invalidates the code it concerns:
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
// After a data fault libunicorn leaves RIP where the translated code last
// stored it, and that is not always the faulting block. It is stored when
// a run starts, when a block is left through the execution loop (its
// first exits, indirect jumps), and before an instruction with a code
// hook (the translator also stores the lazily computed flags there). It
// is not stored when a block jumps straight into the next one: libunicorn
// chains direct jumps, calls and conditional branches to the same page
// after they are first taken. Measured: a loop of three blocks reading
// past an array reports RIP at the start of its second block when the
// load in its third faults (TestFaultPCChained). The instructions before
// the fault have run and the general registers hold the state just before
// the faulting instruction. The flags may not: libunicorn keeps the kind
// of the last flag computation in the translator and stores it only at
// block ends and hooks, and QEMU's usual repair (restoring the state from
// the host PC) is skipped on this path. Measured: "mov rax, 5; cmp rax, 7;
// mov rcx, [unmapped]" reads RFLAGS 0x7 at the fault where a stepped run
// reads 0x93.
//
// # Fault paging (SetFaultPaging; on by default)
//
// The guest runs with page tables (built in watch.c, in the reserved MiB,
// the tables page-mode watchpoints also use) that mirror the memory map:
// unmapped and PROT_NONE pages absent, pages without write permission
// read-only, large pages wherever the map is uniform. libunicorn refuses a
// bad access in its memory helper before any walk, so the memory hook
// (fault_cb, watch_exact_fault) lets it go on when the tables refuse it
// too: an unmapped page gets a scratch page, absent from the tables, for
// the rest of the run. The walk raises a page fault (#GP for a
// non-canonical address) through cpu_loop_exit_restore, so RIP, the
// registers and the flags are those of the faulting instruction; the
// interrupt hook (watch_fault) stops with the access the memory hook
// recorded (Stop.Inexact never set). Map, Unmap and Protect mark the
// tables for a rebuild before the next run (at once from a hook during a
// run, and before the walks libunicorn does outside runs: selector loads,
// code lookups). Those lookups may fault on an absent page; libunicorn
// ignores the fault but QEMU keeps it as in flight (the next one would be
// a double fault), and so does a fault the run stopped on: CR2, which
// every run leaves at a non-canonical value, tells, and the machine goes
// back to its creation-time CPU state with its registers (rs_clear_inflight).
// Cost: a TLB miss walks the tables (BenchmarkOverhead/paging-*; about 1.0
// on loops, loads, stores and calls, 1.6-2x on a load from a new page
// every time); tests/perf's "faults" rows time real runs. A map needing
// more than the reserved MiB of tables turns fault paging off
// (WatchStats.Overflows) and the decoder below takes over.
// TestFaultPCExact, TestFaultPaging and FuzzGuestCode's stepped oracle
// check it.
//
// One exception to exact flags, in QEMU's translator itself: rcl and rcr
// with a memory operand, and setcc storing to memory, compute the flags
// into cc_src (and switch the translator to CC_OP_EFLAGS) before their
// memory access, while the state QEMU restores at a fault keeps the
// flag computation of the instruction's start. The flags read at a fault
// inside one of them can then mix the two: found by FuzzGuestCode,
// "sub al, 0x30; mov al, 0xea; rcr dword [rbx], 1" with rbx 0 reads
// RFLAGS 0x883 at the fault where a stepped run reads 0x83. Which state
// is right depends on how the block was translated, which the machine
// cannot see, so the flags stay as QEMU leaves them; RIP and the general
// registers are exact. The same state reaches a page-mode watchpoint's
// twin (watch.c) when such an instruction writes a watched page.
// TestFaultFlagsTranslatorLimit measures it; FuzzGuestCode's oracle
// leaves the flags of those instructions out.
//
// Without fault paging Run decodes (faultpc.go) with a model of each instruction's memory
// accesses (insnmodel.go: explicit operands with their sizes, 32-bit
// displacements sign-extended, push/pop/call/ret/leave stack accesses,
// string instructions; fxsave, bt with a register offset, enter, xlat and
// the like are "not described"). It scans RIP's block and, breadth first
// (64 blocks at most), the blocks reachable from it through direct
// jumps, calls and branches to the same page. A candidate is an
// instruction whose access, evaluated with the current registers, covers
// the fault address with the fault's kind, or one the model cannot
// evaluate. Sound refutations remove candidates: a later one in the same
// block when an earlier one evaluated to the fault address with registers
// that did not change in between (it used that very address
// successfully); a plain store of another value than the faulting write;
// the first instruction of the successor that RIP's conditional branch
// does not take, evaluated with the flags and RCX (which are the branch's
// if that instruction faulted); every successor when RIP's block cannot
// have run to its end (a register it sets to a constant and does not
// touch again holds another value). One candidate left is the answer;
// several (PC is the first), none, or bytes x86asm cannot decode set
// Stop.Inexact. What is left is undecidable from the state: "mov rax,
// [rbx]; add rbx, N; mov rcx, [rbx]", two pushes of equal values across a
// stack guard page, "mov rax, [rax+8]" twice, three lodsq
// (TestFaultPCDefault). This costs nothing before a fault. Fetch faults
// are always exact: PC is the target address.
//
// Exactness needs information from before the fault, and all of it costs
// something on code that does not fault. SetExactFaults(true) is the
// cheapest found. It adds a UC_HOOK_EDGE_GENERATED hook, which libunicorn
// calls after translating a block and before running it (only once some
// block has run to its end: enabling it runs "jmp +0; hlt" on a reserved
// page first). For blocks of two or more instructions it calls into Go once
// (analysis.go), which picks sync points: the first memory instruction
// after a block's first instruction (for chained entries), a memory
// instruction that an earlier one of its segment could be mistaken for
// (same registers: compare the displacements; anything else might
// coincide), one the model does not describe and the memory instruction
// after it, and one after a flag-setting instruction of its segment. If
// the block needs sync points it was not translated with, code hooks are
// added there, the block is dropped before it runs (uc_emu_stop in the
// edge hook stops before execution), the run goes on from the same RIP,
// the block is translated with the hooks, and the hooks are deleted again:
// a deleted hook drops only the blocks that start in its range, so its
// code stays compiled in. Never at a block's first instruction: that
// block would be dropped by the deletion, translated again, instrumented
// again, forever (a benchmark found it). The decoder then takes the first
// candidate of a block, and from the blocks after RIP's only their first
// instructions (the only faults that leave RIP behind), and not after a
// block with a memory instruction past its first (it would have stored
// RIP). The flags are current at every sync point. A fault stays Inexact
// only when first instructions of two blocks remain candidates.
// TestFaultPCExact checks each hard case against a stepped run, flags
// included.
//
// The price: a code hook compiled into a block costs about 20 ns each time
// its instruction runs, because TCG saves and reloads every guest register
// around the helper call, deleted hook or not (a live hook about 14 ns
// more). Static counts on Wine's ntdll, kernelbase and msvcrt, before the
// first-memory-instruction rule: 11-13% of blocks and 7-9% of
// instructions would be sync points for the position alone (consecutive
// pushes and pops are most of them: they are genuinely
// indistinguishable), 25-27% of blocks and 13-14% of instructions with
// the flags. Measured against raw libunicorn (medians of 3 runs of 5 on
// a shared 2-core machine, BenchmarkSyncPoints and BenchmarkTranslate):
// a loop of three instructions whose load starts its block, 1.0x; a loop
// of seven with two sync points, 5.4x; a push/pop loop with three, 1.0x
// (its stores dominate); code that runs once, so that translation
// dominates, 1.7-1.8x, and 4.2x when every block gets sync points. So it
// is off by default, where the machine costs nothing (BenchmarkOverhead
// machine-, load-, store- and call-vs-raw: medians 0.88-1.05, within the
// machine's noise). SetPCSync(true), the
// older remedy, is neither exact (the translator stores RIP only before
// plain loads and stores, not before SSE, x87, atomic or helper accesses,
// and never the flags) nor cheap (loads 5-7x slower,
// BenchmarkOverhead/sync-load); it is kept for callers.
//
// tests/guestcode repeats issue 14's measurement on the machine alone:
// random 48-byte blobs run from read-write-execute memory, each in a
// child process, every fault compared with a stepped run. FuzzGuestCode
// checks the same (no abort, no wrong unflagged position) on mutated
// inputs.
//
// int3 stops with PC after the int3 (as on hardware; Addr is the int3
// itself), so continuing does not execute it again. #DE and #UD stop with
// PC at the faulting instruction (QEMU restores it for exceptions).
// hlt stops with StopHalt and PC after it. StopReason.GDBSignal gives the
// signal a stub reports (SIGSEGV, SIGILL, SIGFPE, SIGINT, else SIGTRAP).
//
// # Translator aborts
//
// libunicorn 2.0.1 calls abort() when it translates some invalid
// encodings: the translator reads a TCG temporary that nothing set, and
// the register allocator stops the process ("qemu/tcg/tcg.c:3073: tcg
// fatal error"). Translation covers a whole block, so the bytes need not
// be reached: bytes after a breakpoint in the same block are enough. A CPU
// raises #UD for all of them. Two families were found by a one-off sweep
// (every opcode of the one-byte, 0f, 0f38 and 0f3a maps with every ModRM
// byte and 16 prefix combinations: 4,194,304 translations, 4,186 aborts)
// and 20,000 random 48-byte blobs (16 aborts); FuzzGuestCode is seeded
// with both and its corpus keeps the blobs:
//
//   - a far call or jump with a register operand: ff /3 and ff /5 with
//     mod=3, with any prefixes (ff d8, 42 ff dd, 49 4b ff dc);
//   - a lock prefix on an instruction that does not write memory: cmp
//     with a memory operand (f0 38, f0 39, f0 81 /7), cmps (f0 a6, f0 a7),
//     bt, bts, btr, btc with a register operand (f0 0f a3/ab/b3/bb and
//     f0 0f ba with mod=3).
//
// Whether an encoding aborts can depend on the instructions before it in
// the block (an earlier one may have set the temporary), so no list of
// encodings is complete. Debian 13's 2.1.1 adds
// the missing "mod == 3: illegal" checks, but building our own libunicorn
// would make every CI machine compile QEMU and would change the library
// whose behaviour the rest of this essay measures; the choice here works
// with the library Debian 12 ships, for whatever else makes it abort.
//
// Refusing the encodings before translation cannot be complete: there is
// no hook before translation (UC_HOOK_BLOCK and UC_HOOK_EDGE_GENERATED run
// after it), and code the guest writes itself (unpackers, JITs, the
// shellcode our users debug) would need every store watched. So the abort
// is survived instead. rs_new installs a SIGABRT handler (SA_ONSTACK, as
// Go requires; SA_NODEFER, because the longjmp below does not restore the
// signal mask). A thread-local pointer names the machine executing on the
// thread; a SIGABRT raised by abort() on that thread (SI_TKILL from our
// own pid) while it runs is ours, any other goes to the previous handler
// (Go's, which crashes the process as before: TestForeignAbort).
//
// Leaving the translator with our own longjmp out of uc_emu_start would
// leave libunicorn mid-run: its nesting level stays raised (after 64 such
// aborts every uc_emu_start fails), deleted hooks are never freed, and the
// CPU flags stay in TCG's internal form. Instead the handler asks
// libunicorn to translate code at the escape page, a non-canonical address
// Map refuses (UC_CTL_TB_REQUEST_CACHE). That fetch faults, and libunicorn
// leaves the translator the way it does after any fetch fault from inside
// translation: QEMU's own longjmp back to its execution loop, which
// unwinds normally; uc_emu_start returns UC_ERR_FETCH_UNMAPPED with RIP at
// the start of the block whose translation failed, nothing of it executed.
// glibc's abort() releases its lock before raising, so it can be called
// again. Measured: 100,000 aborts in a row in one engine, each followed by
// a normal run, all correct; each leaks a few hundred bytes of the
// translation buffer (the two half-built blocks), reclaimed by the next
// flush of that buffer. libunicorn still prints its one-line message to
// stderr.
//
// Then isolate finds the instruction: it runs again from the block start
// with an exit on each of the 15 bytes after the current instruction, so
// that each block holds one instruction, and goes on from each exit. The
// first one-instruction block whose translation aborts is the culprit: the
// stop is StopIllegal (SIGILL) at its address, Untranslatable set, Insn
// its bytes, every instruction before it executed exactly once. Anything
// that stops first is the stop instead: a breakpoint, a fault, the end of
// a step, a watchpoint. For the culprit's own block, which never ran, the
// block and code hooks are called by hand (replay_hooks), so that a
// breakpoint or a trap on the bytes, or a step ending there, is reported
// as such. Exits generate halting code in the blocks translated while they
// are set; those blocks are dropped afterwards. The culprit costs two
// aborts (its block's and its own), counted by TranslationAborts.
//
// # Position counter
//
// SetCounting(true) counts the instructions executed (Position), for time
// travel. A C UC_HOOK_BLOCK callback adds each entered block's instruction
// count, taken once per block from libunicorn's translation cache
// (uc_ctl_request_cache from inside the hook answers with the running
// block's uc_tb; a direct-mapped table keyed by address and size keeps
// it). A stop inside a block (breakpoint, step, fault, watchpoint) takes
// back the instructions from the stop PC on, decoded in Go (rsInsnIndex);
// a stop at a block boundary needs nothing; the twin engine's instruction
// of a page-mode watchpoint counts one. An instruction with a rep prefix
// counts once per libunicorn entry: once per iteration, plus one for the
// entry that finds RCX zero (TestPositionCountsInstructions).
//
// SetPositionLimit(n) makes the hook stop before a block that would take
// the count past n (StopPosition; a stop in a block hook prevents the
// block from running, measured); StepOne, a tracer step, then moves one
// instruction at a time. After such a stop RIP is written from the hook's
// address: libunicorn stores RIP only when a block is left through the
// execution loop, so after a block chained straight into the stopped one
// RIP still named an earlier block (found on a mingw CRT loop, where the
// state at position 350 read as the one at 345). Time slices
// (SetQuantum) share the hook while counting, so that a block a slice
// stops before is never counted, and get the same RIP fix.
//
// SetVirtualTSC makes rdtsc and rdtscp read the position times a factor
// (libunicorn 2.0.1 refuses an rdtsc instruction hook with UC_ERR_HOOK).
// When the counter first sees a block, Go decodes it (rsScanTSC); after
// each rdtsc a code hook goes in that rewrites EDX:EAX from the exact
// position, and the block (and the one after it) is dropped before it
// runs and run again from its start (restart_pc: RIP may be stale there
// too), so the hooks are compiled in (TestVirtualTSC).
//
// The cost is a C call per block entered: BenchmarkOverhead/count-* 1.84-
// 2.04x on a two-instruction loop (one block an iteration), 0.85-1.10x on
// call and store loops. Off by default.
//
// # Interrupt
//
// Interrupt raises a flag that every hook running at an instruction or
// block boundary checks (breakpoints, trap hooks, the tracer, block
// hooks): the first to run stops the run there, exactly, and a run that
// ends by itself (a hlt trap: AddHaltTrapRange) is reported interrupted.
// libunicorn 2.0.1 has no exact stop from outside: uc_emu_stop is noticed
// at the start of a block and after every guest memory access, so the run
// may end inside a block (inside an instruction) with RIP on the block's
// start, or on an earlier block while any code hook exists (cpu_tb_exec
// then leaves RIP to the hooks). Only a run that meets no hook within
// forceAfter (20 ms: a loop that calls nothing) is stopped that way, and
// the stop is Inexact. That request is a signal to the running thread,
// whose handler calls uc_emu_stop there: called from another thread it
// sets the stop flag before the exit request, and helper_uc_tracecode
// skips every hook while the flag is set, so a trap's hook could be
// skipped while its instruction ran. uc_emu_start clears a stop request
// that arrives before it has started, so the forced request repeats every
// 5 ms until that run returns; a run generation number keeps a late
// repeat from stopping the next run. TestInterruptExactPC and
// TestInterruptPushLoop check every stop against counters the guest keeps.

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
// # Stores
//
// faststore.c gives guest stores the translated fast path that libunicorn
// 2.0.1 denies them (see the notes below). libunicorn calls its own
// tlb_set_page_with_attrs, tb_gen_code, tlb_protect_code and
// tlb_unprotect_code through its PLT, so definitions of them in our
// executable (exported there because libunicorn refers to them) take
// their place and call libunicorn's own through dlsym(RTLD_NEXT). A TLB
// fill of a writable page of memory a machine mapped (hostmem.go tells
// rs_fast_map) clears the page's "not dirty" mark (tlb_set_dirty) unless
// the page holds translated code of that engine; a page that gets its
// first block (tlb_protect_code, only ever called inside tb_gen_code,
// whose CPU the wrapper notes) is recorded and every TLB entry mapping it
// is marked again (tlb_reset_dirty), so a store over code still drops it;
// tlb_unprotect_code (the page's last block gone) forgets it. Pages are
// recorded per engine (the machine and its twin) by ram offset and host
// page; a tb_flush forgets blocks without telling, which only leaves
// those pages slow. Memory hooks are unaffected (libunicorn sends every
// access to the slow path while one exists), and read-only memory keeps
// its own mark (TLB_DISCARD_WRITE). Engines that are not a machine's (the
// benchmarks' raw libunicorn) and any other libunicorn version pass
// through untouched; RSPSTUB_SLOW_STORES=1 turns the layer off for
// comparison. Measured (BenchmarkOverhead/store-vs-raw, a store and a
// load per iteration): our machine takes 0.03 of raw libunicorn's time
// (33x faster), 0.98 with RSPSTUB_SLOW_STORES=1; tests/perf's wine-userland
// API mix ran 1.40 s before and 0.40 s after, start-up included.
// TestFastStoresSelfModifying (a loop patching its own next instruction,
// and stores to data on a code page) fails when code pages are not
// marked again; TestFastStoresActive fails if the layer stops engaging.
//
// The same file starts the translation-block hash table small: 2.0.1's
// uc_open sizes it for 32768 blocks (512 KiB written at once, per engine,
// and a machine has two), and it grows by itself as it fills, so
// qht_init is given 1024 instead. Measured: unicorn.New 5-6 ms before,
// 3 ms after; `rspstub serve` to "listening on" 50 ms before, 46.5 ms after
// (synth userland; a page fault costs up to about 25 microseconds on the
// development machine, perf stat's task-clock over its page faults).
// qht_init's size applies with RSPSTUB_SLOW_STORES=1 too: that switch is
// for the stores alone.
//
// # libunicorn 2.0.1 notes
//
//   - Stores are slow in 2.0.1 whatever the hooks: 2.0.1 stubs QEMU's
//     dirty-memory tracking (a page is always "clean"), so every store
//     takes notdirty_write, which allocates and frees a page collection
//     (glib trees) to look for translated code on the page. Raw
//     libunicorn runs a store-and-load loop at about 45 M instructions/s
//     against 1,000-1,300 M without the store. Our machines do not pay
//     it: see "Stores" below.
//   - uc_mem_write does not drop the translations of code it overwrites
//     (the same stub); hostmem.go does it with UC_CTL_TB_REMOVE_CACHE.
//   - The x87 control word and MXCSR start at zero (all exceptions
//     unmasked); New sets the power-on values 0x37f and 0x1f80.
//   - AVX is not emulated (QEMU 5 TCG), so HasAVX is false and YMMH zero.
//   - uc_emu_start's "until" stops at address 0 when 0 is given; New
//     enables Unicorn exits with an empty list so a jump to NULL faults.
package unicorn
