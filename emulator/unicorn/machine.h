// C half of package unicorn: the hot state (breakpoint table, stop record,
// shadow stack) and every Unicorn callback live here, so that Run never
// calls into Go while the guest executes.
#ifndef RSPSTUB_UNICORN_MACHINE_H
#define RSPSTUB_UNICORN_MACHINE_H

#include <stdint.h>
#include <pthread.h>
#include <unicorn/unicorn.h>

// Stop reasons; the Go StopReason values are the same numbers.
enum {
	RS_STOP_NONE = 0,
	RS_STOP_BREAKPOINT,
	RS_STOP_HWBREAKPOINT,
	RS_STOP_WATCH,
	RS_STOP_TRAP,
	RS_STOP_STEP,
	RS_STOP_INTERRUPT,
	RS_STOP_FAULT,
	RS_STOP_ILLEGAL,
	RS_STOP_DIVIDE,
	RS_STOP_INT3,
	RS_STOP_HALT,
	RS_STOP_ERROR,
	RS_STOP_EXCEPTION,
	RS_STOP_SYSCALL,
	RS_STOP_RANGE_EXIT,
	RS_STOP_QUANTUM,
	RS_STOP_POSITION,
};

// The page-mode watchpoints' page tables (watch.c) live in the last MiB
// below 1 TiB: guest-physical memory the walker reads (addresses in page
// table entries must stay below 2^40, libunicorn's physical width). Map
// refuses this range.
#define RS_PT_BASE 0xFFFFF00000ULL
#define RS_PT_SIZE 0x100000ULL
// Two pages of it never mapped but by the machine itself: machine.c's
// escape and prime pages while the guest has page tables.
#define RS_PT_ESCAPE (RS_PT_BASE + RS_PT_SIZE - 0x3000)
#define RS_PT_PRIME (RS_PT_BASE + RS_PT_SIZE - 0x2000)

// Access bits, the same as arch.Perm.
enum { RS_READ = 1, RS_WRITE = 2, RS_EXEC = 4 };

// Register context; must match the Go Context struct byte for byte.
typedef struct rs_context {
	uint64_t gpr[16];
	uint64_t rip, rflags;
	uint32_t cs, ss, ds, es, fs, gs;
	uint64_t fs_base, gs_base;
	uint8_t st[8][10];
	uint32_t fctrl, fstat, ftag, fiseg, fioff, foseg, fooff, fop;
	uint8_t xmm[16][16];
	uint32_t mxcsr;
	uint8_t ymmh[16][16];
} rs_context;

typedef struct rs_bp {
	struct rs_machine *m;
	uint64_t addr;
	uc_hook hook;
	uint8_t sw, hw; // enabled flags; a hook with all clear costs nothing
	uint8_t tmp;    // a successor of the instruction being stepped
} rs_bp;

typedef struct rs_watch {
	struct rs_machine *m;
	uint64_t addr, size;
	int kind; // 1 write, 2 read, 3 access (Go WatchKind + 1)
	uc_hook hook; // hook mode: the memory hook; page mode: 0
	int page;     // page mode (watch.c): write-protected pages, no hook
	int on;       // page mode: removed entries stay until their pages are released
	int idle;     // page mode: runs started while off
	int hot;      // page mode: demoted to a hook (its page is written too often)
} rs_watch;

// Page-mode watchpoint state (watch.c); NULL until the first one.
struct rs_wstate;

typedef struct rs_trap {
	struct rs_machine *m;
	uint64_t start, end;
	uc_hook hook; // 0 for a halt trap (rs_trap_add)
	int halt;
} rs_trap;

typedef struct rs_frame {
	uint64_t call_site, target, ret, sp;
} rs_frame;

// Sync points of one block waiting for its retranslation (see doc.go,
// "Faults and their PC"): code hooks whose only job is to be compiled
// into that block.
#define RS_MAX_SYNC 64
#define RS_MAX_PENDING 8

typedef struct rs_pending {
	uint64_t pc;   // block start; 0: free
	int n;         // hooks in use
	uint64_t addr[RS_MAX_SYNC];
	uc_hook hook[RS_MAX_SYNC];
} rs_pending;

typedef struct rs_stop {
	int reason;
	int access; // RS_READ/RS_WRITE/RS_EXEC
	int watch;  // Go WatchKind of the hit
	uint32_t vector;
	uint64_t pc, addr;
	uint64_t access_pc; // watch hits: the instruction that made the access
	uint64_t value; // value a faulting write stores
	int size;       // size of the faulting access
	int untranslatable; // RS_STOP_ILLEGAL: libunicorn's translator aborted on it
	int exact;      // faults: PC is known exact (found by the twin)
	uc_err err;
} rs_stop;

// The position counter's cache of instruction counts per translation
// block (direct-mapped by start address; see count.c).
#define RS_TBC_BITS 16
typedef struct rs_tbc {
	uint64_t addr;
	uint32_t size;
	uint32_t n;
} rs_tbc;

// Fast guest stores (faststore.c).
typedef struct rs_fast rs_fast;
typedef struct rs_fast_stats {
	uint64_t cleared;    // TLB fills whose store mark was cleared
	uint64_t code_pages; // pages recorded when they got translated code
	int tracked;         // pages recorded now
	int broken;          // a page could not be recorded: clearing stopped
} rs_fast_stats;
typedef struct rs_fast_cur {
	rs_fast *f;
	void *s;
} rs_fast_cur;
int rs_fast_stores_on(void);
rs_fast *rs_fast_new(uc_engine *uc);
void rs_fast_twin(rs_fast *f, uc_engine *twin);
void rs_fast_free(rs_fast *f);
rs_fast_cur rs_fast_enter(rs_fast *f, uc_engine *uc);
void rs_fast_leave(rs_fast_cur prev);
int rs_fast_map(rs_fast *f, uint64_t addr, uint64_t size, void *host);
void rs_fast_unmap(rs_fast *f, uint64_t addr, uint64_t end);
void rs_fast_read_stats(rs_fast *f, rs_fast_stats *out);

typedef struct rs_machine {
	uc_engine *uc;
	rs_fast *fast; // fast stores' state, NULL when they are off
	rs_stop stop;

	// Resume bookkeeping: when a run resumes where the machine last
	// stopped (last_pc), the first breakpoint hit at start_pc is the
	// replay of the hit we stopped on, and is skipped. A run that starts
	// elsewhere (RIP moved by the caller, e.g. into a guest callback)
	// reports a breakpoint at its first instruction. A step always
	// executes its first instruction.
	uint64_t start_pc;
	uint64_t last_pc;
	int skip_bp;
	int mode; // as for rs_run
	uc_hook tracer_hook;
	int tracer_first;
	uint64_t range_start, range_end;

	rs_bp **bps;
	int nbps, capbps;

	rs_watch **watches;
	int nwatches, capwatches;
	int nhookwatches; // hook-mode watches: the tracer runs while any exists
	struct rs_wstate *ws;
	int watch_pending;
	uint64_t watch_addr, watch_pc;
	int watch_access, watch_kind;

	rs_trap **traps;
	int ntraps, captraps;

	uc_hook fault_hook, intr_hook, invalid_hook, syscall_hook, sync_hook;

	// Translator aborts (see doc.go): escaping is set by the SIGABRT
	// handler before it leaves the translator; aborts counts them.
	volatile int escaping;
	int in_run; // uc_emu_start is running (hooks may change the map)
	uint64_t aborts;

	// Block analysis: the Go Machine's cgo.Handle, the edge hook that
	// calls it, the blocks being retranslated with sync points, and
	// restart: a block was dropped before it ran, run again from RIP.
	uintptr_t handle;
	uc_hook edge_hook;
	rs_pending pending[RS_MAX_PENDING];
	int pending_next;
	int restart;
	uint64_t instrumented; // blocks retranslated with sync points
	int primed;
	volatile int interrupt; // Interrupt was called during this run
	// The thread in uc_emu_start (valid while in_emu is 1): rs_interrupt
	// signals it, so that the stop is requested on that thread.
	pthread_t run_thread;
	int in_emu; // atomic
	int force_intr; // atomic: the interrupt may stop between hooks (rs_interrupt)
	int forced;     // it did: RIP may be inexact
	uint64_t fault_pc;
	int fault_pc_exact;

	// The Go handler of system calls served during a run (cgo.Handle), 0
	// for none: every syscall then stops the run.
	uintptr_t go_syscall;
	// The registers a Go system-call handler sees, read before it runs
	// (gpr, rip and rflags only), and the RAX it leaves (sys_rax_set).
	rs_context sys_regs;
	uint64_t sys_rax;
	int sys_rax_set;

	// The CPU state at creation: restored (with the registers put back)
	// after a CPU exception stop, see rs_run.
	uc_context *clean;

	// Time slices: a block hook that stops after quantum blocks.
	uc_hook quantum_hook;
	int64_t quantum, quantum_left;

	// Shadow call stack.
	uc_hook block_hook;
	rs_frame *frames;
	int nframes, capframes;
	uint64_t prev_block, prev_block_end, prev_rsp;
	uint64_t shadow_dropped; // frames lost to overflow

	// Position counter (count.c): instructions executed while it is on.
	// icount adds a block's instructions when the block is entered;
	// cnt_block/cnt_size/cnt_n describe the block entered last, and
	// cnt_open says it may not have run to its end: a stop inside it
	// takes back the instructions after the stop PC (count_settle).
	uc_hook count_hook;
	rs_tbc *tbc;
	uint64_t icount;
	uint64_t cnt_block;
	uint32_t cnt_size, cnt_n;
	int cnt_open;
	// limit_on: stop (RS_STOP_POSITION) before entering a block that
	// would take icount past limit.
	int limit_on;
	uint64_t limit;
	uint64_t cnt_misses;  // cache misses (blocks looked up in libunicorn)
	uint64_t cnt_decoded; // of which libunicorn's answer did not fit: decoded
	// Virtual time stamp counter (count.c, with the counter): a code
	// hook after each rdtsc/rdtscp seen replaces EDX:EAX with the
	// position times tsc_mul; restart_pc is where a run goes on after a
	// block was dropped to compile such hooks in.
	int tsc_virtual;
	uint64_t tsc_mul;
	uc_hook *tsc_hooks;
	uint64_t *tsc_addrs;
	int ntsc, captsc;
	uint64_t restart_pc;
	int restart_at;
	uint64_t tsc_reads;
	// Coverage: a block hook that records each executed block's start
	// and size in an open-addressing set (addr 0 marks a free slot).
	uc_hook cov_hook;
	struct rs_cov_entry *cov;
	uint64_t ncov, capcov;
	int cov_full; // the set reached its bound: later new blocks are lost
} rs_machine;

typedef struct rs_cov_entry {
	uint64_t addr;
	uint32_t size;
} rs_cov_entry;

// Results returned by value: out-parameters would make cgo move Go locals
// to the heap.
typedef struct rs_result {
	uint64_t v;
	uc_err err;
} rs_result;

rs_machine *rs_new(uc_err *err);
void rs_close(rs_machine *m);

void *rs_host_map(uint64_t size);
void rs_host_unmap(void *p, uint64_t size);
void rs_remove_cache(rs_machine *m, uint64_t start, uint64_t end);
rs_result rs_mem_read(rs_machine *m, uint64_t addr, void *buf, uint64_t len);
rs_result rs_mem_write(rs_machine *m, uint64_t addr, const void *buf, uint64_t len);

uc_err rs_reg_read(rs_machine *m, int id, uint64_t *v);
rs_result rs_reg_get(rs_machine *m, int id);
uc_err rs_reg_write(rs_machine *m, int id, uint64_t v);
uc_err rs_set_gdtr(rs_machine *m, uint64_t base, uint32_t limit);
uc_err rs_get_gdtr(rs_machine *m, uint64_t *base, uint32_t *limit);
uc_err rs_save_clean(rs_machine *m);
uc_err rs_read_context(rs_machine *m, rs_context *c);
uc_err rs_read_gprs(rs_machine *m, rs_context *c);
uc_err rs_write_context(rs_machine *m, const rs_context *c);
uc_err rs_read_msr(rs_machine *m, uint32_t id, uint64_t *v);
uc_err rs_write_msr(rs_machine *m, uint32_t id, uint64_t v);

uc_err rs_bp_set(rs_machine *m, uint64_t addr, int hw, int on);
uc_err rs_watch_add(rs_machine *m, uint64_t addr, uint64_t size, int kind);
uc_err rs_watch_remove(rs_machine *m, uint64_t addr, uint64_t size, int kind);

// watch.c: page-mode watchpoints and the twin engine.
uc_err rs_twin_open(rs_machine *m);
uc_err rs_twin_map(rs_machine *m, uint64_t addr, uint64_t size, uint32_t perms, void *host);
uc_err rs_twin_unmap(rs_machine *m, uint64_t addr, uint64_t size);
uc_err rs_twin_protect(rs_machine *m, uint64_t addr, uint64_t size, uint32_t perms);
uc_err rs_pwatch_add(rs_machine *m, uint64_t addr, uint64_t size);
uc_err rs_pwatch_remove(rs_machine *m, uint64_t addr, uint64_t size);
typedef struct rs_wstats {
	uint64_t faults;   // write faults on protected pages (each ran in the twin)
	uint64_t hits;     // of which hit a watched range
	uint64_t demoted;  // watches moved to hook mode (their page written too often)
	uint64_t flushes;  // TLB flushes (protection added)
	uint64_t released; // pages whose protection was lifted
	uint64_t pfaults;  // exact faults: page faults outside protected pages
	uint64_t stale;    // of which libunicorn allowed (the tables were stale)
	uint64_t overflows; // exact faults given up: the map needed too many tables
	uint64_t probes;   // page faults libunicorn raised outside runs, cleared
	int tables;        // table pages the last build used
	int pages;         // protected pages now
} rs_wstats;
uc_err rs_exact_paging(rs_machine *m, int on);
int rs_exact_paging_state(rs_machine *m);
uc_err rs_map_changed(rs_machine *m);
int watch_exact_fault(rs_machine *m, int type, uint64_t addr, int size, uint64_t value);
void watch_unscratch(rs_machine *m);
void watch_end(rs_machine *m);
void watch_settle(rs_machine *m);
void watch_sync(rs_machine *m);
void rs_clear_inflight(rs_machine *m);
rs_wstats rs_watch_stats(rs_machine *m);
// Internal to the C half: run-start preparation, the #PF handler, the
// paging registers after a context restore, and cleanup.
int watch_prepare(rs_machine *m);
int watch_fault(rs_machine *m, uint32_t intno);
void watch_reapply(rs_machine *m);
int watch_paging(rs_machine *m);
int watch_restart(rs_machine *m);
void watch_close(rs_machine *m);
uc_err watch_hook(rs_machine *m, rs_watch *w);
void watch_unhook(rs_machine *m, rs_watch *w);
uc_err rs_trap_add(rs_machine *m, uint64_t start, uint64_t end, int halt);
uc_err rs_shadow_enable(rs_machine *m, int on);
uc_err rs_set_quantum(rs_machine *m, int64_t blocks);
uc_err rs_count_enable(rs_machine *m, int on);
void rs_tsc_virtual(rs_machine *m, int on, uint64_t mul);
void count_settle(rs_machine *m, uint64_t pc);
void count_twin(rs_machine *m, uint64_t pc, int done);
int count_block_cb(rs_machine *m, uint64_t addr, uint32_t size);
uc_err rs_set_coverage(rs_machine *m, int on);
uint64_t rs_coverage(rs_machine *m, rs_cov_entry *out, uint64_t max);
uc_err rs_set_sync(rs_machine *m, int on);
uc_err rs_raw_run(const void *code, size_t len);
void rs_set_handle(rs_machine *m, uintptr_t h);
void rs_interrupt(rs_machine *m, int force);
uc_err rs_exact_faults(rs_machine *m, int on);

// mode: 0 run, 1 step (tracer), 2 range step over [a, b), 3 step whose
// successors are a and b.
void rs_run(rs_machine *m, int mode, uint64_t a, uint64_t b);

void *rs_grow(void *p, int *cap, size_t elem);

#endif
