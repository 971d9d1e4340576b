// C half of package unicorn. See doc.go for the design.
#include <sys/mman.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "machine.h"
#include "_cgo_export.h"

// The signal rs_interrupt sends to a running thread: a real-time one that
// neither Go's runtime nor glibc uses.
#define RS_INTR_SIGNAL (SIGRTMAX - 3)

// An address no guest can reach (non-canonical): the range of the hidden
// memory hook whose only job is to make Unicorn sync RIP before every
// memory access, so that fault PCs are exact.
#define RS_SYNC_ADDR 0x8000000000000000ULL

// The escape page: non-canonical and never mapped (Map refuses it), so
// fetching code from it always faults. See "Translator aborts" in doc.go.
#define RS_ESCAPE_ADDR 0x8000000000001000ULL

// A page mapped only while rs_new runs two blocks there, so that
// libunicorn calls the edge hook for every block translated after.
#define RS_PRIME_ADDR 0x8000000000002000ULL

// escape_addr and prime_addr are those pages, or while the guest has
// page tables (page-mode watchpoints, watch.c), where a non-canonical
// address raises #GP, canonical pages of the reserved MiB.
static uint64_t escape_addr(rs_machine *m)
{
	return watch_paging(m) ? RS_PT_ESCAPE : RS_ESCAPE_ADDR;
}

static uint64_t prime_addr(rs_machine *m)
{
	return watch_paging(m) ? RS_PT_PRIME : RS_PRIME_ADDR;
}

static void rs_stop_now(rs_machine *m, int reason, uint64_t pc)
{
	if (m->stop.reason == RS_STOP_NONE) {
		if (m->watch_pending) {
			// The access happened before whatever stops us now: report it.
			m->watch_pending = 0;
			m->stop.reason = RS_STOP_WATCH;
			m->stop.addr = m->watch_addr;
			m->stop.access = m->watch_access;
			m->stop.watch = m->watch_kind;
			m->stop.access_pc = m->watch_pc;
		} else {
			m->stop.reason = reason;
		}
		m->stop.pc = pc;
	}
	uc_emu_stop(m->uc);
}

// interrupt_due reports that Interrupt asked this run to stop and nothing
// else stopped it yet.
static int interrupt_due(rs_machine *m)
{
	return __atomic_load_n(&m->interrupt, __ATOMIC_RELAXED) && m->stop.reason == RS_STOP_NONE;
}

// stops_itself reports that a hook runs before every block or instruction
// (block hooks, the tracer): it stops the run for an interrupt itself, at
// a PC it knows (intr_handler).
static int stops_itself(rs_machine *m)
{
	return m->tracer_hook != 0 || m->block_hook != 0 || m->count_hook != 0 || m->quantum_hook != 0 ||
	       m->cov_hook != 0;
}

static uint64_t rs_rip(rs_machine *m)
{
	uint64_t v = 0;
	uc_reg_read(m->uc, UC_X86_REG_RIP, &v);
	return v;
}

// ---- callbacks -----------------------------------------------------------

static void bp_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	rs_bp *bp = ud;
	rs_machine *m = bp->m;
	(void)uc;
	(void)size;
	if (interrupt_due(m)) {
		rs_stop_now(m, RS_STOP_INTERRUPT, addr);
		return;
	}
	if (!bp->sw && !bp->hw && !bp->tmp)
		return;
	if (m->skip_bp && addr == m->start_pc) {
		// Unicorn replays the code hook of the instruction we stopped
		// on: this hit is the one already reported.
		m->skip_bp = 0;
		return;
	}
	if (m->mode != 0) {
		// Stepping: reaching another breakpoint ends the step.
		rs_stop_now(m, RS_STOP_STEP, addr);
		return;
	}
	rs_stop_now(m, bp->sw ? RS_STOP_BREAKPOINT : RS_STOP_HWBREAKPOINT, addr);
}

static rs_bp *bp_find(rs_machine *m, uint64_t addr);

static void trap_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	rs_trap *t = ud;
	rs_machine *m = t->m;
	rs_bp *bp = bp_find(m, addr);
	(void)uc;
	(void)size;
	if (interrupt_due(m)) {
		rs_stop_now(m, RS_STOP_INTERRUPT, addr);
		return;
	}
	// A user breakpoint on a trap address ("break WriteFile" on an
	// emulated API entry) is what the debugger must see first; the trap
	// is reported when execution resumes from there (the replayed hook
	// at the start PC is then skipped, as in bp_cb).
	if (bp != NULL && (bp->sw || bp->hw) && m->mode == 0 &&
	    !(m->skip_bp && addr == m->start_pc)) {
		rs_stop_now(m, bp->sw ? RS_STOP_BREAKPOINT : RS_STOP_HWBREAKPOINT, addr);
		return;
	}
	rs_stop_now(m, RS_STOP_TRAP, addr);
}

static void watch_cb(uc_engine *uc, uc_mem_type type, uint64_t addr, int size,
		     int64_t value, void *ud)
{
	rs_watch *w = ud;
	rs_machine *m = w->m;
	uint64_t end = addr + (uint64_t)(size > 0 ? size : 1);
	(void)uc;
	(void)value;
	if (end <= w->addr || addr >= w->addr + w->size)
		return; // the hook range is widened; this access misses
	if (type == UC_MEM_WRITE && !(w->kind & 1))
		return;
	if (type == UC_MEM_READ && !(w->kind & 2))
		return;
	if (m->watch_pending)
		return;
	m->watch_pending = 1;
	// Exact: memory hooks make the translator store RIP before each access.
	m->watch_pc = rs_rip(m);
	m->watch_addr = addr > w->addr ? addr : w->addr;
	m->watch_access = type == UC_MEM_WRITE ? RS_WRITE : RS_READ;
	m->watch_kind = w->kind - 1;
}

// The tracer is a code hook on every address, installed only while a step,
// a range step or a watchpoint needs it. It stops after one instruction
// (step), at the first instruction outside the range (range step), or at
// the instruction after a watched access.
static void tracer_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	rs_machine *m = ud;
	// The hook before the first instruction: nothing has run yet.
	int first = m->tracer_first;
	(void)uc;
	(void)size;
	m->tracer_first = 0;
	if (interrupt_due(m)) {
		rs_stop_now(m, RS_STOP_INTERRUPT, addr);
		return;
	}
	if (m->watch_pending) {
		rs_stop_now(m, RS_STOP_WATCH, addr);
		return;
	}
	if (m->mode == 0 || m->mode == 3)
		return;
	if (first && addr == m->start_pc)
		return;
	if (m->mode == 2 && addr >= m->range_start && addr < m->range_end)
		return;
	rs_stop_now(m, RS_STOP_STEP, addr);
}

// invalidate_all drops every translated block (hooks are compiled into
// translated code, so adding or removing a hook that covers more than one
// address needs it). uc_ctl_flush_tlb would do the same but costs 0.1-2.6 s
// in libunicorn 2.0.1; removing the cache of each mapped region costs
// microseconds per megabyte.
static void invalidate_all(rs_machine *m)
{
	uc_mem_region *r = NULL;
	uint32_t n = 0, i;
	watch_sync(m); // the lookups walk the tables
	if (uc_mem_regions(m->uc, &r, &n) != UC_ERR_OK)
		return;
	for (i = 0; i < n; i++)
		uc_ctl_remove_cache(m->uc, r[i].begin, r[i].end + 1);
	uc_free(r);
}

static bool fault_cb(uc_engine *uc, uc_mem_type type, uint64_t addr, int size,
		     int64_t value, void *ud)
{
	rs_machine *m = ud;
	(void)uc;
	if (m->escaping && addr == escape_addr(m))
		return false; // the SIGABRT handler leaving the translator
	if (m->stop.reason != RS_STOP_NONE)
		return false;
	if (watch_exact_fault(m, type, addr, size, (uint64_t)value))
		return true; // the table walk faults next, exactly (watch.c)
	m->stop.reason = RS_STOP_FAULT;
	m->stop.addr = addr;
	m->stop.value = (uint64_t)value;
	m->stop.size = size;
	switch (type) {
	case UC_MEM_READ_UNMAPPED:
	case UC_MEM_READ_PROT:
		m->stop.access = RS_READ;
		break;
	case UC_MEM_WRITE_UNMAPPED:
	case UC_MEM_WRITE_PROT:
		m->stop.access = RS_WRITE;
		break;
	default:
		m->stop.access = RS_EXEC;
		break;
	}
	m->stop.pc = m->stop.access == RS_EXEC ? addr : rs_rip(m);
	return false;
}

static void intr_cb(uc_engine *uc, uint32_t intno, void *ud)
{
	rs_machine *m = ud;
	uint64_t pc;
	(void)uc;
	if (watch_fault(m, intno))
		return; // a write to a page-mode watchpoint's page (watch.c)
	pc = rs_rip(m);
	switch (intno) {
	case 0:
		rs_stop_now(m, RS_STOP_DIVIDE, pc);
		break;
	case 3:
		rs_stop_now(m, RS_STOP_INT3, pc);
		if (m->stop.reason == RS_STOP_INT3)
			m->stop.addr = pc - 1;
		break;
	case 6:
		rs_stop_now(m, RS_STOP_ILLEGAL, pc);
		break;
	default:
		rs_stop_now(m, RS_STOP_EXCEPTION, pc);
		if (m->stop.reason == RS_STOP_EXCEPTION)
			m->stop.vector = intno;
		break;
	}
}

static bool invalid_cb(uc_engine *uc, void *ud)
{
	rs_machine *m = ud;
	(void)uc;
	if (m->stop.reason == RS_STOP_NONE) {
		m->stop.reason = RS_STOP_ILLEGAL;
		m->stop.pc = rs_rip(m);
	}
	return false;
}

// rsGoSyscall is the Go side's system-call handler (export.go): it
// returns non-zero when it served the call, which then runs on without a
// stop.
extern int rsGoSyscall(uintptr_t handle);

static void syscall_cb(uc_engine *uc, void *ud)
{
	rs_machine *m = ud;
	(void)uc;
	if (m->go_syscall != 0 && m->mode == 0 && rs_read_gprs(m, &m->sys_regs) == UC_ERR_OK) {
		int done;
		// The hook runs before RIP moves past the instruction; the
		// handler sees it past (0f 05 is two bytes), as a stop reports it.
		m->sys_regs.rip += 2;
		m->sys_rax_set = 0;
		done = rsGoSyscall(m->go_syscall);
		if (m->sys_rax_set) {
			rs_reg_write(m, UC_X86_REG_RAX, m->sys_rax);
			m->sys_rax_set = 0;
		}
		if (done) {
			// The call is made; the run stops after it, exactly, if
			// Interrupt asked (RIP moves past the instruction next).
			if (interrupt_due(m))
				rs_stop_now(m, RS_STOP_INTERRUPT, m->sys_regs.rip);
			return;
		}
	}
	rs_stop_now(m, RS_STOP_SYSCALL, rs_rip(m));
}

static void sync_cb(uc_engine *uc, uc_mem_type type, uint64_t addr, int size,
		    int64_t value, void *ud)
{
	(void)uc;
	(void)type;
	(void)addr;
	(void)size;
	(void)value;
	(void)ud;
}

// call_len returns the length of a call instruction that ends exactly at
// end (E8 rel32, or FF /2 with an optional REX prefix), or 0.
static int call_len(rs_machine *m, uint64_t end)
{
	uint8_t b[16];
	int k, avail = 16;
	if (end < 16 || uc_mem_read(m->uc, end - 16, b, 16) != UC_ERR_OK) {
		// The call may sit at the start of a mapping: use the bytes of
		// end's own page only.
		avail = (int)(((end - 1) & 0xFFF) + 1);
		if (avail > 16)
			avail = 16;
		memset(b, 0, sizeof b);
		if (end < (uint64_t)avail || uc_mem_read(m->uc, end - (uint64_t)avail, b + 16 - avail, (size_t)avail) != UC_ERR_OK)
			return 0;
	}
	if (avail >= 5 && b[11] == 0xE8)
		return 5;
	for (k = 2; k <= 10 && k <= avail; k++) {
		int i = 16 - k, len, mod, rm;
		uint8_t modrm;
		if (b[i] != 0xFF)
			continue;
		modrm = b[i + 1];
		if (((modrm >> 3) & 7) != 2)
			continue;
		mod = modrm >> 6;
		rm = modrm & 7;
		len = 2;
		if (mod != 3) {
			if (rm == 4) {
				len++;
				if (i + 2 >= 16)
					continue;
				if (mod == 0 && (b[i + 2] & 7) == 5)
					len += 4;
			}
			if (mod == 0 && rm == 5)
				len += 4;
			else if (mod == 1)
				len += 1;
			else if (mod == 2)
				len += 4;
		}
		if (len != k)
			continue;
		if (k < avail && (b[i - 1] & 0xF0) == 0x40)
			len++;
		return len;
	}
	return 0;
}

static void block_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	rs_machine *m = ud;
	uint64_t rsp = 0, top = 0, pend = m->prev_block_end;
	if (interrupt_due(m)) {
		rs_stop_now(m, RS_STOP_INTERRUPT, addr);
		return;
	}
	uc_reg_read(uc, UC_X86_REG_RSP, &rsp);
	// A frame whose return-address slot is below RSP is dead: returned
	// from, or unwound past (tail jump, longjmp, exception).
	while (m->nframes > 0 && m->frames[m->nframes - 1].sp < rsp)
		m->nframes--;
	// A call leaves RSP below where the calling block started, so a block
	// start with RSP not lower than the previous one needs no memory read.
	if (pend != 0 && rsp < m->prev_rsp && uc_mem_read(uc, rsp, &top, 8) == UC_ERR_OK && top == pend) {
		int n = m->nframes;
		int dup = n > 0 && m->frames[n - 1].sp == rsp && m->frames[n - 1].ret == pend;
		int len = dup ? 0 : call_len(m, pend);
		if (len > 0) {
			if (n == m->capframes) {
				// Full: drop the oldest half rather than grow forever.
				int keep = n / 2;
				memmove(m->frames, m->frames + (n - keep), (size_t)keep * sizeof(rs_frame));
				m->shadow_dropped += (uint64_t)(n - keep);
				n = m->nframes = keep;
			}
			m->frames[n].call_site = pend - (uint64_t)len;
			m->frames[n].target = addr;
			m->frames[n].ret = pend;
			m->frames[n].sp = rsp;
			m->nframes = n + 1;
		}
	}
	m->prev_block = addr;
	m->prev_block_end = addr + size;
	m->prev_rsp = rsp;
}

// ---- block analysis ------------------------------------------------------------

static void nop_code_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	(void)uc;
	(void)addr;
	(void)size;
	(void)ud;
}

static rs_pending *pending_find(rs_machine *m, uint64_t pc)
{
	int i;
	for (i = 0; i < RS_MAX_PENDING; i++)
		if (m->pending[i].n > 0 && m->pending[i].pc == pc)
			return &m->pending[i];
	return NULL;
}

// pending_release deletes the hooks; blocks translated meanwhile keep
// their helper calls and RIP stores, which is the point.
static void pending_release(rs_machine *m, rs_pending *p)
{
	int i;
	for (i = 0; i < p->n; i++)
		uc_hook_del(m->uc, p->hook[i]);
	p->n = 0;
	p->pc = 0;
}

// pending_add installs a code hook on each of the n addresses (n < 0: one
// hook from addr[0] to end, inclusive). It returns 0 on failure.
static int pending_add(rs_machine *m, uint64_t pc, const uint64_t *addr, int n, uint64_t end)
{
	rs_pending *p = NULL;
	int i, k;
	for (i = 0; i < RS_MAX_PENDING && p == NULL; i++)
		if (m->pending[i].n == 0)
			p = &m->pending[i];
	if (p == NULL) {
		// Evict the oldest: if its block comes back without its hooks it
		// is analysed and instrumented again.
		p = &m->pending[m->pending_next];
		m->pending_next = (m->pending_next + 1) % RS_MAX_PENDING;
		pending_release(m, p);
	}
	p->pc = pc;
	k = n < 0 ? 1 : n;
	for (i = 0; i < k; i++) {
		uint64_t lo = addr[i], hi = n < 0 ? end : addr[i];
		if (uc_hook_add(m->uc, &p->hook[i], UC_HOOK_CODE, (void *)nop_code_cb, m, lo, hi) != UC_ERR_OK) {
			p->n = i;
			pending_release(m, p);
			return 0;
		}
		p->addr[i] = n < 0 ? ~lo : lo; // a range is marked by its complement
		p->n = i + 1;
	}
	return 1;
}

static int pending_matches(const rs_pending *p, const uint64_t *addr, int n)
{
	int i;
	if (n < 0)
		return p->n == 1 && p->addr[0] == ~addr[0];
	if (p->n != n)
		return 0;
	for (i = 0; i < n; i++)
		if (p->addr[i] != addr[i])
			return 0;
	return 1;
}

// edge_cb runs right after libunicorn translated a block, before the block
// runs. Blocks of two or more instructions are analysed (rsPlanSyncs, in
// Go). If the block needs sync points that it was not translated with,
// they are added as code hooks, the block is dropped, and the run stops
// before executing it; emu runs again from the same RIP, the block is
// translated anew with the hooks, and this callback then deletes them.
static void edge_cb(uc_engine *uc, uc_tb *cur, uc_tb *prev, void *ud)
{
	rs_machine *m = ud;
	uint64_t pts[RS_MAX_SYNC];
	rs_pending *p;
	int n;
	(void)prev;
	if (m->handle == 0 || cur->icount < 2)
		return;
	n = rsPlanSyncs(m->handle, cur->pc, cur->size, cur->icount, pts, RS_MAX_SYNC);
	p = pending_find(m, cur->pc);
	if (p != NULL) {
		int same = pending_matches(p, pts, n);
		pending_release(m, p);
		if (same)
			return; // translated with its sync points
	}
	if (n == 0)
		return;
	if (!pending_add(m, cur->pc, pts, n, cur->pc + cur->size - 1))
		return;
	m->instrumented++;
	uc_ctl_remove_cache(uc, cur->pc, cur->pc + cur->size);
	m->restart = 1;
	uc_emu_stop(uc);
}

void rs_set_handle(rs_machine *m, uintptr_t h)
{
	m->handle = h;
}

static uc_err prime(rs_machine *m);

// rs_exact_faults switches the block analysis on or off. Blocks already
// translated are dropped so that they are analysed (or lose their sync
// points) when translated again.
uc_err rs_exact_faults(rs_machine *m, int on)
{
	uc_err e = UC_ERR_OK;
	int i;
	if (on && m->edge_hook == 0) {
		e = uc_hook_add(m->uc, &m->edge_hook, UC_HOOK_EDGE_GENERATED, (void *)edge_cb, m, 1, 0);
		if (e != UC_ERR_OK) {
			m->edge_hook = 0;
			return e;
		}
		if (!m->primed) {
			e = prime(m);
			m->primed = e == UC_ERR_OK;
		}
	} else if (!on && m->edge_hook != 0) {
		e = uc_hook_del(m->uc, m->edge_hook);
		m->edge_hook = 0;
		for (i = 0; i < RS_MAX_PENDING; i++)
			if (m->pending[i].n > 0)
				pending_release(m, &m->pending[i]);
	}
	invalidate_all(m);
	return e;
}

// rs_interrupt asks a run to stop, from any thread. libunicorn 2.0.1 has
// no exact way to stop a run from outside: uc_emu_stop makes the CPU leave
// its translated code at the next exit check, and one follows every guest
// load and store, so the run may end inside a block, even inside an
// instruction, with RIP naming the start of the block (or an earlier
// block while any code hook exists); resuming from there runs code twice
// (TestInterruptExactPC, TestInterruptPushLoop). Called from another
// thread it also sets the stop flag before the exit request, and a hook
// running between the two is skipped while its instruction still runs (a
// trap skipped that way returned from an API stub without the call).
//
// So an interrupt first only raises m->interrupt: every hook that runs at
// an instruction or block boundary (breakpoints, traps, the tracer, block
// hooks) stops the run there, exactly, and a run that ends by itself
// (an API call of the synthesized userland is a hlt: rs_trap_add) is seen
// as interrupted by Go. Only when nothing like that happens in time (a
// loop that calls nothing) does Go ask again with force: the running
// thread is signalled and requests the stop itself (intr_handler; on that
// thread no hook is skipped), and the stop is marked inexact (m->forced)
// unless a hook runs before every block or instruction anyway.
void rs_interrupt(rs_machine *m, int force)
{
	__atomic_store_n(&m->interrupt, 1, __ATOMIC_SEQ_CST);
	if (!force)
		return;
	__atomic_store_n(&m->force_intr, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&m->in_emu, __ATOMIC_SEQ_CST))
		pthread_kill(m->run_thread, RS_INTR_SIGNAL);
}

// ---- translator aborts -------------------------------------------------------

// The machine executing guest code on this thread, if any: only a SIGABRT
// raised on this thread while it runs is an abort of libunicorn's
// translator (or of a helper it called) that we can leave.
static __thread rs_machine *rs_running;

static struct sigaction rs_prev_abrt;
static pthread_once_t rs_abrt_once = PTHREAD_ONCE_INIT;

// abrt_handler runs when abort() raises SIGABRT. If the abort comes from
// libunicorn on a thread in rs_run, it asks libunicorn to translate code
// at the escape page: the fetch faults, and libunicorn itself longjmps out
// of the translator to its execution loop, which unwinds as after any
// fetch fault (uc_emu_start returns UC_ERR_FETCH_UNMAPPED, RIP at the start
// of the block whose translation aborted). That call does not return.
// Any other SIGABRT goes to the handler that was there before (Go's).
static void abrt_handler(int sig, siginfo_t *si, void *uctx)
{
	rs_machine *m = rs_running;
	if (m != NULL && !m->escaping && si != NULL && si->si_code == SI_TKILL &&
	    si->si_pid == getpid()) {
		m->escaping = 1;
		m->aborts++;
		uc_ctl_request_cache(m->uc, escape_addr(m), NULL);
		// Only reached if the fetch did not fault: nothing to escape to.
	}
	if (rs_prev_abrt.sa_flags & SA_SIGINFO) {
		if (rs_prev_abrt.sa_sigaction != NULL)
			rs_prev_abrt.sa_sigaction(sig, si, uctx);
		return;
	}
	if (rs_prev_abrt.sa_handler != SIG_DFL && rs_prev_abrt.sa_handler != SIG_IGN)
		rs_prev_abrt.sa_handler(sig);
	// SIG_DFL: returning lets abort() kill the process, as it would have.
}

// intr_handler runs on the thread rs_interrupt signalled: if that thread
// still runs the machine that was interrupted, the stop is requested here.
// A signal that arrives after the run ended finds no machine (or one
// whose interrupt flag the next run cleared) and does nothing.
static void intr_handler(int sig, siginfo_t *si, void *uctx)
{
	rs_machine *m = rs_running;
	int saved = errno;
	(void)sig;
	(void)si;
	(void)uctx;
	if (m != NULL && __atomic_load_n(&m->interrupt, __ATOMIC_SEQ_CST) &&
	    __atomic_load_n(&m->force_intr, __ATOMIC_SEQ_CST) && !stops_itself(m)) {
		m->forced = 1;
		uc_emu_stop(m->uc);
	}
	errno = saved;
}

static void install_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = abrt_handler;
	sigemptyset(&sa.sa_mask);
	// SA_ONSTACK: Go requires it of every handler. SA_NODEFER: QEMU's
	// sigsetjmp does not save the signal mask, so SIGABRT must not be
	// blocked while the handler runs, or it would stay blocked after the
	// longjmp.
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
	sigaction(SIGABRT, &sa, &rs_prev_abrt);

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = intr_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigaction(RS_INTR_SIGNAL, &sa, NULL);
}

// A run restarts once per block instrumented during it; this bounds a
// run that does nothing else (each restart translates a new block).
#define RS_MAX_RESTARTS (1 << 24)

// emu is uc_emu_start with the abort handler armed for m, run again from
// RIP after the edge hook dropped a block to instrument it.
static uc_err emu(rs_machine *m, uint64_t pc)
{
	rs_fast_cur fcur;
	uc_err e;
	int i;
	for (i = 0;; i++) {
		m->escaping = 0;
		m->restart = 0;
		m->restart_at = 0;
		rs_running = m;
		m->in_run = 1;
		m->run_thread = pthread_self();
		__atomic_store_n(&m->in_emu, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&m->interrupt, __ATOMIC_SEQ_CST)) {
			// Interrupted before the signal could reach a run: do
			// not start one (uc_emu_start would clear the request).
			__atomic_store_n(&m->in_emu, 0, __ATOMIC_SEQ_CST);
			m->in_run = 0;
			rs_running = NULL;
			if (rs_rip(m) != pc)
				rs_reg_write(m, UC_X86_REG_RIP, pc);
			e = UC_ERR_OK;
			break;
		}
		fcur = rs_fast_enter(m->fast, m->uc);
		e = uc_emu_start(m->uc, pc, 0, 0, 0);
		rs_fast_leave(fcur);
		__atomic_store_n(&m->in_emu, 0, __ATOMIC_SEQ_CST);
		m->in_run = 0;
		rs_running = NULL;
		if (!m->restart || m->escaping || e != UC_ERR_OK || m->stop.reason != RS_STOP_NONE ||
		    m->interrupt || i == RS_MAX_RESTARTS)
			break;
		pc = m->restart_at ? m->restart_pc : rs_rip(m);
	}
	m->restart = 0;
	return e;
}

// is_hlt reports whether [pc, end) is one hlt instruction (with prefixes).
static int is_hlt(rs_machine *m, uint64_t pc, uint64_t end)
{
	uint8_t b[15];
	uint64_t n = end - pc, i;
	if (end <= pc || n > sizeof b || uc_mem_read(m->uc, pc, b, (size_t)n) != UC_ERR_OK)
		return 0;
	for (i = 0; i + 1 < n; i++) {
		uint8_t p = b[i];
		if (!(p == 0x26 || p == 0x2E || p == 0x36 || p == 0x3E || p == 0x64 || p == 0x65 ||
		      p == 0x66 || p == 0x67 || p == 0xF0 || p == 0xF2 || p == 0xF3 || (p & 0xF0) == 0x40))
			return 0;
	}
	return b[n - 1] == 0xF4;
}

// replay_hooks calls what libunicorn would have called on entering a block
// at pc and before its first instruction (the block hook, then the code
// hooks), for a block that never ran because its translation aborted: a
// breakpoint, trap or step end there is the stop, not the instruction.
static void replay_hooks(rs_machine *m, uint64_t pc)
{
	rs_bp *bp = bp_find(m, pc);
	int i;
	if (m->block_hook != 0)
		block_cb(m->uc, pc, 0, m);
	if (bp != NULL)
		bp_cb(m->uc, pc, 0, bp);
	for (i = 0; i < m->ntraps; i++)
		if (!m->traps[i]->halt && pc >= m->traps[i]->start && pc < m->traps[i]->end)
			trap_cb(m->uc, pc, 0, m->traps[i]);
	if (m->tracer_hook != 0)
		tracer_cb(m->uc, pc, 0, m);
}

// A translation block holds at most 512 instructions; the instruction
// that aborts is found well before this many one-instruction runs.
#define RS_ISOLATE_MAX 4096

// isolate finds the instruction whose translation aborted. pc is the start
// of the block that failed; none of it has run. It runs from pc with an
// exit on each of the 15 bytes after the current instruction, so that every
// block holds one instruction, and goes on from where each run stops, until
// the translation of a one-instruction block aborts (that instruction is
// the culprit: an illegal-instruction stop there, with every instruction
// before it executed) or execution stops for another reason first
// (breakpoint, fault, step end...), which is then the stop.
static uc_err isolate(rs_machine *m, uint64_t pc)
{
	uint64_t lo = pc, hi = pc, exits[15];
	uc_err e = UC_ERR_OK;
	int i, k;
	for (i = 0; i < RS_ISOLATE_MAX; i++) {
		uint64_t start = pc, rip;
		for (k = 0; k < 15; k++)
			exits[k] = start + 1 + (uint64_t)k;
		uc_ctl_set_exits(m->uc, exits, 15);
		if (start < lo)
			lo = start;
		if (start > hi)
			hi = start;
		e = emu(m, start);
		rip = rs_rip(m);
		if (m->escaping) {
			e = UC_ERR_OK;
			if (m->stop.reason != RS_STOP_NONE)
				break; // stopped before the abort (a syscall, ...)
			if (rip == start) {
				replay_hooks(m, start);
				if (m->stop.reason == RS_STOP_NONE) {
					m->stop.reason = RS_STOP_ILLEGAL;
					m->stop.untranslatable = 1;
				}
				m->stop.pc = start;
				break;
			}
			pc = rip; // another block aborted (execution went elsewhere)
			continue;
		}
		if (e != UC_ERR_OK || m->stop.reason != RS_STOP_NONE)
			break;
		if (rip <= start || rip > start + 15 || is_hlt(m, start, rip))
			break; // hlt or Interrupt
		pc = rip; // the exit after one instruction
	}
	if (i == RS_ISOLATE_MAX && m->stop.reason == RS_STOP_NONE) {
		m->stop.reason = RS_STOP_ERROR;
		m->stop.untranslatable = 1;
		m->stop.pc = rs_rip(m);
		e = UC_ERR_EXCEPTION;
	}
	uc_ctl_set_exits(m->uc, NULL, 0);
	// One-instruction blocks must not outlive the exits they end at.
	uc_ctl_remove_cache(m->uc, lo, hi + 16);
	return e;
}

// ---- lifecycle -----------------------------------------------------------

// prime runs two blocks on a page mapped for that, so that later
// translations call the edge hook: libunicorn skips it until some block
// has run to its end (one that ends in an exception, like a lone hlt,
// does not count).
static uc_err prime(rs_machine *m)
{
	static const uint8_t code[] = {0xEB, 0x00, 0xF4}; // jmp +0; hlt
	uint64_t rip = rs_rip(m);
	uint64_t at = prime_addr(m);
	uc_err e = uc_mem_map(m->uc, at, 0x1000, UC_PROT_READ | UC_PROT_EXEC);
	if (e != UC_ERR_OK)
		return e;
	e = uc_mem_write(m->uc, at, code, sizeof code);
	if (e == UC_ERR_OK)
		e = uc_emu_start(m->uc, at, 0, 0, 0);
	uc_ctl_remove_cache(m->uc, at, at + sizeof code);
	uc_mem_unmap(m->uc, at, 0x1000);
	rs_reg_write(m, UC_X86_REG_RIP, rip);
	return e;
}

rs_machine *rs_new(uc_err *err)
{
	rs_machine *m;
	uc_err e;
	pthread_once(&rs_abrt_once, install_handlers);
	m = calloc(1, sizeof *m);
	if (m == NULL) {
		*err = UC_ERR_NOMEM;
		return NULL;
	}
	e = uc_open(UC_ARCH_X86, UC_MODE_64, &m->uc);
	if (e != UC_ERR_OK) {
		free(m);
		*err = e;
		return NULL;
	}
	// Exits with an empty list: uc_emu_start's "until" no longer stops
	// at address 0, so a jump to NULL faults like on hardware.
	e = uc_ctl_exits_enable(m->uc);
	if (e == UC_ERR_OK)
		e = uc_hook_add(m->uc, &m->fault_hook, UC_HOOK_MEM_INVALID, (void *)fault_cb, m, 1, 0);
	if (e == UC_ERR_OK)
		e = uc_hook_add(m->uc, &m->intr_hook, UC_HOOK_INTR, (void *)intr_cb, m, 1, 0);
	if (e == UC_ERR_OK)
		e = uc_hook_add(m->uc, &m->invalid_hook, UC_HOOK_INSN_INVALID, (void *)invalid_cb, m, 1, 0);
	if (e == UC_ERR_OK)
		e = uc_hook_add(m->uc, &m->syscall_hook, UC_HOOK_INSN, (void *)syscall_cb, m, 1, 0,
				UC_X86_INS_SYSCALL);

	if (e != UC_ERR_OK) {
		uc_close(m->uc);
		free(m);
		*err = e;
		return NULL;
	}
	// libunicorn 2.0.1 leaves the x87 control word and MXCSR zero (every
	// exception unmasked); give them their power-on values.
	rs_reg_write(m, UC_X86_REG_FPCW, 0x37F);
	rs_reg_write(m, UC_X86_REG_MXCSR, 0x1F80);
	if (uc_context_alloc(m->uc, &m->clean) == UC_ERR_OK)
		uc_context_save(m->uc, m->clean);
	m->fast = rs_fast_new(m->uc);
	*err = UC_ERR_OK;
	return m;
}

uc_err rs_set_sync(rs_machine *m, int on)
{
	uc_err e = UC_ERR_OK;
	if (on && m->sync_hook == 0)
		e = uc_hook_add(m->uc, &m->sync_hook, UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE,
				(void *)sync_cb, m, RS_SYNC_ADDR, RS_SYNC_ADDR);
	else if (!on && m->sync_hook != 0) {
		e = uc_hook_del(m->uc, m->sync_hook);
		m->sync_hook = 0;
	}
	invalidate_all(m);
	return e;
}

void rs_close(rs_machine *m)
{
	int i;
	if (m == NULL)
		return;
	if (m->clean != NULL)
		uc_context_free(m->clean);
	uc_close(m->uc);
	watch_close(m);
	rs_fast_free(m->fast);
	for (i = 0; i < m->nbps; i++)
		free(m->bps[i]);
	for (i = 0; i < m->nwatches; i++)
		free(m->watches[i]);
	for (i = 0; i < m->ntraps; i++)
		free(m->traps[i]);
	free(m->bps);
	free(m->watches);
	free(m->traps);
	free(m->frames);
	free(m->tbc);
	free(m->tsc_hooks);
	free(m->tsc_addrs);
	free(m->cov);
	free(m);
}

// ---- memory ----------------------------------------------------------------

// rs_host_map allocates zeroed host memory for guest pages (committed
// lazily by the host kernel); NULL when there is none.
void *rs_host_map(uint64_t size)
{
	void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void rs_host_unmap(void *p, uint64_t size)
{
	munmap(p, (size_t)size);
}

// rs_remove_cache drops the translated code made from [start, end), which
// must be mapped executable (libunicorn finds the code pages by a fetch).
void rs_remove_cache(rs_machine *m, uint64_t start, uint64_t end)
{
	watch_sync(m); // the lookup walks the tables
	uc_ctl_remove_cache(m->uc, start, end);
}

typedef uc_err (*rs_memop)(rs_machine *m, uint64_t addr, uint8_t *buf, uint64_t len);

static uc_err op_read(rs_machine *m, uint64_t addr, uint8_t *buf, uint64_t len)
{
	return uc_mem_read(m->uc, addr, buf, (size_t)len);
}

static uc_err op_write(rs_machine *m, uint64_t addr, uint8_t *buf, uint64_t len)
{
	return uc_mem_write(m->uc, addr, buf, (size_t)len);
}

// mem_prefix does op on the longest accessible prefix, page by page when
// the whole range is not accessible at once.
static int mem_prefix(rs_machine *m, rs_memop op, uint64_t addr, uint8_t *buf, uint64_t len, uc_err *err)
{
	uint64_t done = 0;
	*err = UC_ERR_OK;
	if (len == 0)
		return 0;
	if (addr + len >= addr && op(m, addr, buf, len) == UC_ERR_OK)
		return (int)len;
	while (done < len) {
		uint64_t a = addr + done;
		uint64_t chunk = 0x1000 - (a & 0xFFF);
		uc_err e;
		if (a < addr)
			break; // wrapped around the address space
		if (chunk > len - done)
			chunk = len - done;
		e = op(m, a, buf + done, chunk);
		if (e != UC_ERR_OK) {
			*err = e;
			break;
		}
		done += chunk;
	}
	return (int)done;
}

rs_result rs_mem_read(rs_machine *m, uint64_t addr, void *buf, uint64_t len)
{
	rs_result r;
	r.v = (uint64_t)mem_prefix(m, op_read, addr, buf, len, &r.err);
	return r;
}

rs_result rs_mem_write(rs_machine *m, uint64_t addr, const void *buf, uint64_t len)
{
	rs_result r;
	r.v = (uint64_t)mem_prefix(m, op_write, addr, (uint8_t *)buf, len, &r.err);
	return r;
}

rs_result rs_reg_get(rs_machine *m, int id)
{
	rs_result r;
	r.err = rs_reg_read(m, id, &r.v);
	return r;
}

// ---- registers -------------------------------------------------------------

uc_err rs_reg_read(rs_machine *m, int id, uint64_t *v)
{
	uint8_t buf[64];
	uc_err e;
	memset(buf, 0, sizeof buf);
	e = uc_reg_read(m->uc, id, buf);
	memcpy(v, buf, 8);
	return e;
}

uc_err rs_reg_write(rs_machine *m, int id, uint64_t v)
{
	uint8_t buf[64];
	// A selector load reads its descriptor through the page tables.
	if (id == UC_X86_REG_CS || id == UC_X86_REG_SS || id == UC_X86_REG_DS ||
	    id == UC_X86_REG_ES || id == UC_X86_REG_FS || id == UC_X86_REG_GS)
		watch_sync(m);
	memset(buf, 0, sizeof buf);
	memcpy(buf, &v, 8);
	return uc_reg_write(m->uc, id, buf);
}

// rs_save_clean makes the current CPU state the one the machine goes
// back to after a CPU exception (see rs_run): segment selectors loaded
// since creation must survive that reset.
uc_err rs_save_clean(rs_machine *m)
{
	if (m->clean == NULL)
		return UC_ERR_OK;
	return uc_context_save(m->uc, m->clean);
}

uc_err rs_get_gdtr(rs_machine *m, uint64_t *base, uint32_t *limit)
{
	uc_x86_mmr r;
	uc_err e;
	memset(&r, 0, sizeof r);
	e = uc_reg_read(m->uc, UC_X86_REG_GDTR, &r);
	*base = r.base;
	*limit = r.limit;
	return e;
}

uc_err rs_set_gdtr(rs_machine *m, uint64_t base, uint32_t limit)
{
	uc_x86_mmr r;
	memset(&r, 0, sizeof r);
	r.base = base;
	r.limit = limit;
	return uc_reg_write(m->uc, UC_X86_REG_GDTR, &r);
}

static const int gpr_ids[16] = {
	UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
	UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
	UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
	UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
};
static const int seg_ids[6] = {
	UC_X86_REG_CS, UC_X86_REG_SS, UC_X86_REG_DS,
	UC_X86_REG_ES, UC_X86_REG_FS, UC_X86_REG_GS,
};
static const int fpu_ids[8] = {
	UC_X86_REG_FPCW, UC_X86_REG_FPSW, UC_X86_REG_FPTAG, UC_X86_REG_FCS,
	UC_X86_REG_FIP, UC_X86_REG_FDS, UC_X86_REG_FDP, UC_X86_REG_FOP,
};

#define RS_NCTX (16 + 2 + 6 + 2 + 8 + 8 + 16 + 1)

typedef struct rs_batch {
	int ids[RS_NCTX];
	void *ptrs[RS_NCTX];
	uint8_t slots[RS_NCTX][64];
} rs_batch;

static void batch_init(rs_batch *b)
{
	int i, n = 0;
	for (i = 0; i < 16; i++)
		b->ids[n++] = gpr_ids[i];
	b->ids[n++] = UC_X86_REG_RIP;
	b->ids[n++] = UC_X86_REG_RFLAGS;
	for (i = 0; i < 6; i++)
		b->ids[n++] = seg_ids[i];
	b->ids[n++] = UC_X86_REG_FS_BASE;
	b->ids[n++] = UC_X86_REG_GS_BASE;
	for (i = 0; i < 8; i++)
		b->ids[n++] = UC_X86_REG_ST0 + i;
	for (i = 0; i < 8; i++)
		b->ids[n++] = fpu_ids[i];
	for (i = 0; i < 16; i++)
		b->ids[n++] = UC_X86_REG_XMM0 + i;
	b->ids[n++] = UC_X86_REG_MXCSR;
	for (i = 0; i < RS_NCTX; i++)
		b->ptrs[i] = b->slots[i];
}

static uint64_t slot64(rs_batch *b, int i)
{
	uint64_t v;
	memcpy(&v, b->slots[i], 8);
	return v;
}

static uint32_t slot32(rs_batch *b, int i, uint32_t mask)
{
	uint32_t v;
	memcpy(&v, b->slots[i], 4);
	return v & mask;
}

uc_err rs_read_context(rs_machine *m, rs_context *c)
{
	rs_batch b;
	uc_err e;
	int i, n = 0;
	batch_init(&b);
	memset(b.slots, 0, sizeof b.slots);
	e = uc_reg_read_batch(m->uc, b.ids, b.ptrs, RS_NCTX);
	if (e != UC_ERR_OK)
		return e;
	for (i = 0; i < 16; i++)
		c->gpr[i] = slot64(&b, n++);
	c->rip = slot64(&b, n++);
	c->rflags = slot64(&b, n++);
	c->cs = slot32(&b, n++, 0xFFFF);
	c->ss = slot32(&b, n++, 0xFFFF);
	c->ds = slot32(&b, n++, 0xFFFF);
	c->es = slot32(&b, n++, 0xFFFF);
	c->fs = slot32(&b, n++, 0xFFFF);
	c->gs = slot32(&b, n++, 0xFFFF);
	c->fs_base = slot64(&b, n++);
	c->gs_base = slot64(&b, n++);
	for (i = 0; i < 8; i++)
		memcpy(c->st[i], b.slots[n++], 10);
	c->fctrl = slot32(&b, n++, 0xFFFF);
	c->fstat = slot32(&b, n++, 0xFFFF);
	c->ftag = slot32(&b, n++, 0xFFFF);
	c->fiseg = slot32(&b, n++, 0xFFFF);
	c->fioff = slot32(&b, n++, 0xFFFFFFFF);
	c->foseg = slot32(&b, n++, 0xFFFF);
	c->fooff = slot32(&b, n++, 0xFFFFFFFF);
	c->fop = slot32(&b, n++, 0x7FF);
	for (i = 0; i < 16; i++)
		memcpy(c->xmm[i], b.slots[n++], 16);
	c->mxcsr = slot32(&b, n++, 0xFFFFFFFF);
	memset(c->ymmh, 0, sizeof c->ymmh);
	return UC_ERR_OK;
}

// rs_read_gprs reads the general registers, RIP and RFLAGS only (the
// rest of c is left as it was): what a system call's arguments need.
uc_err rs_read_gprs(rs_machine *m, rs_context *c)
{
	int ids[18];
	void *ptrs[18];
	int i;
	for (i = 0; i < 16; i++) {
		ids[i] = gpr_ids[i];
		ptrs[i] = &c->gpr[i];
	}
	ids[16] = UC_X86_REG_RIP;
	ptrs[16] = &c->rip;
	ids[17] = UC_X86_REG_RFLAGS;
	ptrs[17] = &c->rflags;
	return uc_reg_read_batch(m->uc, ids, ptrs, 18);
}

static void put64(rs_batch *b, int i, uint64_t v)
{
	memcpy(b->slots[i], &v, 8);
}

uc_err rs_write_context(rs_machine *m, const rs_context *c)
{
	rs_batch b;
	uc_err e;
	int i, n = 0, k, segs;
	uint64_t cur;
	batch_init(&b);
	memset(b.slots, 0, sizeof b.slots);
	for (i = 0; i < 16; i++)
		put64(&b, n++, c->gpr[i]);
	put64(&b, n++, c->rip);
	put64(&b, n++, c->rflags);
	// Segment selectors are written only when they change: loading one
	// checks the descriptor table, which a flat guest may not have.
	segs = n;
	n += 6;
	put64(&b, n++, c->fs_base);
	put64(&b, n++, c->gs_base);
	for (i = 0; i < 8; i++)
		memcpy(b.slots[n++], c->st[i], 10);
	put64(&b, n++, c->fctrl);
	put64(&b, n++, c->fstat);
	put64(&b, n++, c->ftag);
	put64(&b, n++, c->fiseg);
	put64(&b, n++, c->fioff);
	put64(&b, n++, c->foseg);
	put64(&b, n++, c->fooff);
	put64(&b, n++, c->fop);
	for (i = 0; i < 16; i++)
		memcpy(b.slots[n++], c->xmm[i], 16);
	put64(&b, n++, c->mxcsr);
	{
		const uint32_t sel[6] = {c->cs, c->ss, c->ds, c->es, c->fs, c->gs};
		for (k = 0; k < 6; k++) {
			cur = 0;
			rs_reg_read(m, seg_ids[k], &cur);
			if ((cur & 0xFFFF) != (sel[k] & 0xFFFF)) {
				e = rs_reg_write(m, seg_ids[k], sel[k] & 0xFFFF);
				if (e != UC_ERR_OK)
					return e;
			}
		}
	}
	// Write everything except the selectors, in two runs around them.
	e = uc_reg_write_batch(m->uc, b.ids, (void *const *)b.ptrs, segs);
	if (e == UC_ERR_OK)
		e = uc_reg_write_batch(m->uc, b.ids + segs + 6, (void *const *)(b.ptrs + segs + 6),
				       RS_NCTX - segs - 6);
	// FS/GS base after selectors: a selector load may reset the base.
	return e;
}

uc_err rs_read_msr(rs_machine *m, uint32_t id, uint64_t *v)
{
	uc_x86_msr msr;
	uc_err e;
	msr.rid = id;
	msr.value = 0;
	e = uc_reg_read(m->uc, UC_X86_REG_MSR, &msr);
	*v = msr.value;
	return e;
}

uc_err rs_write_msr(rs_machine *m, uint32_t id, uint64_t v)
{
	uc_x86_msr msr;
	msr.rid = id;
	msr.value = v;
	return uc_reg_write(m->uc, UC_X86_REG_MSR, &msr);
}

// ---- breakpoints, watchpoints, traps ------------------------------------------

// rs_grow doubles a pointer array (16 at first), updating *cap; NULL
// when out of memory (p is then left as it was).
void *rs_grow(void *p, int *cap, size_t elem)
{
	int ncap = *cap ? *cap * 2 : 16;
	void *np = realloc(p, (size_t)ncap * elem);
	if (np != NULL)
		*cap = ncap;
	return np;
}

static rs_bp *bp_find(rs_machine *m, uint64_t addr)
{
	int i;
	for (i = 0; i < m->nbps; i++)
		if (m->bps[i]->addr == addr)
			return m->bps[i];
	return NULL;
}

// Disabled breakpoint hooks are kept (re-enabling one is a store) until
// there are many of them; then they are deleted for real.
#define RS_MAX_IDLE_BPS 256

static void bp_gc(rs_machine *m)
{
	int i, j = 0, idle = 0;
	for (i = 0; i < m->nbps; i++)
		if (!m->bps[i]->sw && !m->bps[i]->hw && !m->bps[i]->tmp)
			idle++;
	if (idle <= RS_MAX_IDLE_BPS)
		return;
	for (i = 0; i < m->nbps; i++) {
		rs_bp *bp = m->bps[i];
		if (!bp->sw && !bp->hw && !bp->tmp) {
			uc_hook_del(m->uc, bp->hook);
			uc_ctl_remove_cache(m->uc, bp->addr, bp->addr + 1);
			free(bp);
		} else {
			m->bps[j++] = bp;
		}
	}
	m->nbps = j;
}

uc_err rs_bp_set(rs_machine *m, uint64_t addr, int hw, int on)
{
	rs_bp *bp = bp_find(m, addr);
	uc_err e;
	if (bp == NULL) {
		if (!on)
			return UC_ERR_ARG;
		if (m->nbps == m->capbps) {
			rs_bp **nb = rs_grow(m->bps, &m->capbps, sizeof *nb);
			if (nb == NULL)
				return UC_ERR_NOMEM;
			m->bps = nb;
		}
		bp = calloc(1, sizeof *bp);
		if (bp == NULL)
			return UC_ERR_NOMEM;
		bp->m = m;
		bp->addr = addr;
		e = uc_hook_add(m->uc, &bp->hook, UC_HOOK_CODE, (void *)bp_cb, bp, addr, addr);
		if (e != UC_ERR_OK) {
			free(bp);
			return e;
		}
		// Code already translated at addr has no call to the hook.
		uc_ctl_remove_cache(m->uc, addr, addr + 1);
		m->bps[m->nbps++] = bp;
	}
	if (hw == 2) {
		bp->tmp = (uint8_t)on;
		return UC_ERR_OK;
	}
	if (hw) {
		if (!on && !bp->hw)
			return UC_ERR_ARG;
		bp->hw = (uint8_t)on;
	} else {
		if (!on && !bp->sw)
			return UC_ERR_ARG;
		bp->sw = (uint8_t)on;
	}
	if (!on)
		bp_gc(m);
	return UC_ERR_OK;
}

static int bp_enabled_at(rs_machine *m, uint64_t addr)
{
	rs_bp *bp = bp_find(m, addr);
	return bp != NULL && (bp->sw || bp->hw || bp->tmp);
}

// watch_hook gives w its memory hook (hook mode): the tracer runs while
// any watch has one.
uc_err watch_hook(rs_machine *m, rs_watch *w)
{
	uc_err e;
	uint64_t lo, hi;
	int type = 0;
	if (w->kind & 1)
		type |= UC_HOOK_MEM_WRITE;
	if (w->kind & 2)
		type |= UC_HOOK_MEM_READ;
	// Unicorn matches a hook range against the first byte of an access:
	// widen the range so that wide accesses starting below it are seen
	// (the callback checks the real overlap).
	lo = w->addr >= 64 ? w->addr - 63 : 0;
	hi = w->addr + w->size - 1;
	e = uc_hook_add(m->uc, &w->hook, type, (void *)watch_cb, w, lo, hi);
	if (e != UC_ERR_OK) {
		w->hook = 0;
		return e;
	}
	m->nhookwatches++;
	invalidate_all(m);
	return UC_ERR_OK;
}

// watch_unhook deletes w's memory hook.
void watch_unhook(rs_machine *m, rs_watch *w)
{
	if (w->hook == 0)
		return;
	uc_hook_del(m->uc, w->hook);
	w->hook = 0;
	m->nhookwatches--;
	invalidate_all(m);
}

// rs_watch_add adds a hook-mode watchpoint: a memory hook on its range
// and the tracer while it exists. Write watchpoints use page mode
// instead (rs_pwatch_add, watch.c).
uc_err rs_watch_add(rs_machine *m, uint64_t addr, uint64_t size, int kind)
{
	rs_watch *w;
	uc_err e;
	if (m->nwatches == m->capwatches) {
		rs_watch **nw = rs_grow(m->watches, &m->capwatches, sizeof *nw);
		if (nw == NULL)
			return UC_ERR_NOMEM;
		m->watches = nw;
	}
	w = calloc(1, sizeof *w);
	if (w == NULL)
		return UC_ERR_NOMEM;
	w->m = m;
	w->addr = addr;
	w->size = size;
	w->kind = kind;
	e = watch_hook(m, w);
	if (e != UC_ERR_OK) {
		free(w);
		return e;
	}
	m->watches[m->nwatches++] = w;
	return UC_ERR_OK;
}

uc_err rs_watch_remove(rs_machine *m, uint64_t addr, uint64_t size, int kind)
{
	int i;
	for (i = 0; i < m->nwatches; i++) {
		rs_watch *w = m->watches[i];
		if (w->page || w->addr != addr || w->size != size || w->kind != kind)
			continue;
		watch_unhook(m, w);
		free(w);
		m->watches[i] = m->watches[--m->nwatches];
		return UC_ERR_OK;
	}
	return UC_ERR_ARG;
}

uc_err rs_trap_add(rs_machine *m, uint64_t start, uint64_t end, int halt)
{
	rs_trap *t;
	uc_err e;
	if (m->ntraps == m->captraps) {
		rs_trap **nt = rs_grow(m->traps, &m->captraps, sizeof *nt);
		if (nt == NULL)
			return UC_ERR_NOMEM;
		m->traps = nt;
	}
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return UC_ERR_NOMEM;
	t->m = m;
	t->start = start;
	t->end = end;
	t->halt = halt != 0;
	if (!t->halt) {
		e = uc_hook_add(m->uc, &t->hook, UC_HOOK_CODE, (void *)trap_cb, t, start, end - 1);
		if (e != UC_ERR_OK) {
			free(t);
			return e;
		}
	}
	uc_ctl_remove_cache(m->uc, start, end);
	m->traps[m->ntraps++] = t;
	return UC_ERR_OK;
}

uc_err rs_shadow_enable(rs_machine *m, int on)
{
	uc_err e = UC_ERR_OK;
	if (on && m->block_hook == 0) {
		if (m->frames == NULL) {
			m->capframes = 1 << 16;
			m->frames = calloc((size_t)m->capframes, sizeof(rs_frame));
			if (m->frames == NULL) {
				m->capframes = 0;
				return UC_ERR_NOMEM;
			}
		}
		m->nframes = 0;
		m->prev_block = m->prev_block_end = 0;
		m->prev_rsp = 0;
		e = uc_hook_add(m->uc, &m->block_hook, UC_HOOK_BLOCK, (void *)block_cb, m, 1, 0);
		if (e != UC_ERR_OK)
			m->block_hook = 0;
	} else if (!on && m->block_hook != 0) {
		e = uc_hook_del(m->uc, m->block_hook);
		m->block_hook = 0;
		m->nframes = 0;
	}
	invalidate_all(m);
	return e;
}

// ---- time slices -------------------------------------------------------------

static void quantum_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	rs_machine *m = ud;
	if (m->count_hook != 0)
		return; // count_cb keeps the time slices (see there)
	if (interrupt_due(m)) {
		rs_stop_now(m, RS_STOP_INTERRUPT, addr);
		return;
	}
	if (--m->quantum_left < 0)
		rs_stop_now(m, RS_STOP_QUANTUM, addr);
}

// ---- position counter --------------------------------------------------------

static void cov_record(rs_machine *m, uint64_t addr, uint32_t size);

extern int rsInsnIndex(uintptr_t handle, uint64_t start, uint64_t pc);
extern int rsScanTSC(uintptr_t handle, uint64_t start, uint64_t size, uint64_t *after, int max);

// tsc_cb runs before the instruction after an rdtsc or rdtscp: EDX:EAX
// become the position there times tsc_mul (a virtual counter: replays
// read what the recording read).
static void tsc_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	rs_machine *m = ud;
	uint64_t pos = m->icount, v;
	(void)uc;
	(void)size;
	if (m->cnt_open && addr >= m->cnt_block && addr < m->cnt_block + m->cnt_size) {
		int k = addr == m->cnt_block ? 0 : rsInsnIndex(m->handle, m->cnt_block, addr);
		if (k >= 0 && (uint32_t)k <= m->cnt_n)
			pos = m->icount - m->cnt_n + (uint32_t)k;
	}
	v = pos * m->tsc_mul;
	rs_reg_write(m, UC_X86_REG_RAX, v & 0xFFFFFFFFULL);
	rs_reg_write(m, UC_X86_REG_RDX, v >> 32);
	m->tsc_reads++;
}

// tsc_hook_new adds tsc_cb at addr unless it is there; 1 when added.
static int tsc_hook_new(rs_machine *m, uint64_t addr)
{
	int i;
	for (i = 0; i < m->ntsc; i++)
		if (m->tsc_addrs[i] == addr)
			return 0;
	if (m->ntsc == m->captsc) {
		int cap = m->captsc ? 2 * m->captsc : 16;
		uc_hook *h = realloc(m->tsc_hooks, (size_t)cap * sizeof *h);
		uint64_t *a;
		if (h == NULL)
			return 0;
		m->tsc_hooks = h;
		a = realloc(m->tsc_addrs, (size_t)cap * sizeof *a);
		if (a == NULL)
			return 0;
		m->tsc_addrs = a;
		m->captsc = cap;
	}
	if (uc_hook_add(m->uc, &m->tsc_hooks[m->ntsc], UC_HOOK_CODE, (void *)tsc_cb, m, addr, addr) != UC_ERR_OK)
		return 0;
	m->tsc_addrs[m->ntsc++] = addr;
	return 1;
}

void rs_tsc_virtual(rs_machine *m, int on, uint64_t mul)
{
	m->tsc_virtual = on;
	m->tsc_mul = mul;
}

// count_cb runs at every block entry while the position counter is on.
// It also keeps the time slices then, so that a block a slice stops
// before is never counted (two block hooks would leave the order to
// libunicorn's hook list).
static void count_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	rs_machine *m = ud;
	rs_tbc *c = &m->tbc[(addr ^ (addr >> RS_TBC_BITS)) & ((1u << RS_TBC_BITS) - 1)];
	uint32_t n;
	if (m->stop.reason != RS_STOP_NONE)
		return; // another hook stopped before this block: it does not run
	if (c->addr != addr || c->size != size || c->n == 0) {
		// The block being entered is translated: libunicorn finds it in
		// its cache and says how many instructions it holds.
		uc_tb tb;
		memset(&tb, 0, sizeof tb);
		m->cnt_misses++;
		if (uc_ctl_request_cache(uc, addr, &tb) != UC_ERR_OK || tb.icount == 0 || tb.size != size) {
			m->cnt_decoded++;
			tb.icount = (uint16_t)rsInsnIndex(m->handle, addr, addr + size);
		}
		c->addr = addr;
		c->size = size;
		c->n = tb.icount ? tb.icount : 1;
		if (m->tsc_virtual) {
			// A block seen for the first time: hooks after its rdtsc
			// instructions, compiled in by dropping it (and the block
			// after it) and running it again from its start.
			uint64_t after[16];
			int i, k = rsScanTSC(m->handle, addr, size, after, 16), added = 0;
			for (i = 0; i < k; i++)
				added |= tsc_hook_new(m, after[i]);
			if (added) {
				uc_ctl_remove_cache(uc, addr, addr + size + 16);
				m->cnt_open = 0;
				m->restart = 1;
				m->restart_at = 1;
				m->restart_pc = addr;
				uc_emu_stop(uc);
				return;
			}
		}
	}
	n = c->n;
	if (interrupt_due(m)) {
		m->cnt_open = 0; // the block before ran to its end
		rs_stop_now(m, RS_STOP_INTERRUPT, addr);
		return;
	}
	if (m->quantum > 0 && --m->quantum_left < 0) {
		m->cnt_open = 0; // the block before ran to its end
		rs_stop_now(m, RS_STOP_QUANTUM, addr);
		return;
	}
	if (m->limit_on && m->icount + n > m->limit) {
		m->cnt_open = 0;
		rs_stop_now(m, RS_STOP_POSITION, addr);
		return;
	}
	if (m->cov_hook != 0)
		cov_record(m, addr, size);
	m->icount += n;
	m->cnt_block = addr;
	m->cnt_size = size;
	m->cnt_n = n;
	m->cnt_open = 1;
}

uc_err rs_count_enable(rs_machine *m, int on)
{
	uc_err e = UC_ERR_OK;
	if (on && m->count_hook == 0) {
		if (m->tbc == NULL) {
			m->tbc = calloc((size_t)1 << RS_TBC_BITS, sizeof *m->tbc);
			if (m->tbc == NULL)
				return UC_ERR_NOMEM;
		}
		e = uc_hook_add(m->uc, &m->count_hook, UC_HOOK_BLOCK, (void *)count_cb, m, 1, 0);
		if (e != UC_ERR_OK)
			m->count_hook = 0;
		m->cnt_open = 0;
		invalidate_all(m);
	} else if (!on && m->count_hook != 0) {
		e = uc_hook_del(m->uc, m->count_hook);
		m->count_hook = 0;
		m->cnt_open = 0;
		invalidate_all(m);
	}
	return e;
}

// count_settle corrects the counter when execution left the block entered
// last at pc without running it to its end: the instructions from pc on
// did not run. A pc outside the block means the block ran to its end (the
// stop came at a block boundary, before the next block's hook).
void count_settle(rs_machine *m, uint64_t pc)
{
	int k;
	if (m->count_hook == 0 || !m->cnt_open)
		return;
	m->cnt_open = 0;
	if (pc < m->cnt_block || pc >= m->cnt_block + m->cnt_size)
		return;
	k = pc == m->cnt_block ? 0 : rsInsnIndex(m->handle, m->cnt_block, pc);
	if (k < 0 || (uint32_t)k > m->cnt_n)
		k = (int)m->cnt_n;
	m->icount -= m->cnt_n - (uint32_t)k;
}

// count_twin accounts for an instruction at pc that the twin engine ran
// (done) or that faulted there (watch.c): the machine's block stopped
// at pc and execution goes on in a new block.
void count_twin(rs_machine *m, uint64_t pc, int done)
{
	count_settle(m, pc);
	if (m->count_hook != 0 && done)
		m->icount++;
}

uc_err rs_set_quantum(rs_machine *m, int64_t blocks)
{
	uc_err e = UC_ERR_OK;
	m->quantum = blocks;
	if (blocks > 0 && m->quantum_hook == 0) {
		e = uc_hook_add(m->uc, &m->quantum_hook, UC_HOOK_BLOCK, (void *)quantum_cb, m, 1, 0);
		if (e != UC_ERR_OK)
			m->quantum_hook = 0;
		invalidate_all(m);
	} else if (blocks <= 0 && m->quantum_hook != 0) {
		e = uc_hook_del(m->uc, m->quantum_hook);
		m->quantum_hook = 0;
		invalidate_all(m);
	}
	return e;
}

// ---- coverage ----------------------------------------------------------------

// At most this many distinct blocks are recorded (16 MiB of table at
// twice the entries).
#define RS_COV_MAX (1u << 20)

static uint64_t cov_hash(uint64_t a)
{
	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdULL;
	a ^= a >> 33;
	return a;
}

static void cov_put(rs_cov_entry *t, uint64_t cap, uint64_t addr, uint32_t size, uint64_t *n)
{
	uint64_t i = cov_hash(addr) & (cap - 1);
	while (t[i].addr != 0 && t[i].addr != addr)
		i = (i + 1) & (cap - 1);
	if (t[i].addr == 0) {
		t[i].addr = addr;
		(*n)++;
	}
	// A block translated again (after a breakpoint or a write) may end
	// elsewhere: keep the longest.
	if (size > t[i].size)
		t[i].size = size;
}

// cov_cb records a block at its entry. While the position counter is on,
// count_cb records instead, after its own checks: a block that a position
// limit or a time slice stops before does not run and is not recorded
// (with two hooks the order would be libunicorn's hook list order).
static void cov_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	rs_machine *m = ud;
	(void)uc;
	if (m->count_hook != 0 || m->stop.reason != RS_STOP_NONE)
		return;
	if (interrupt_due(m)) {
		rs_stop_now(m, RS_STOP_INTERRUPT, addr);
		return;
	}
	cov_record(m, addr, size);
}

static void cov_record(rs_machine *m, uint64_t addr, uint32_t size)
{
	if (addr == 0)
		return;
	if (2 * (m->ncov + 1) > m->capcov) {
		uint64_t cap = m->capcov * 2, i, n = 0;
		rs_cov_entry *t;
		if (m->ncov >= RS_COV_MAX) {
			// Full: record only blocks already known.
			uint64_t j = cov_hash(addr) & (m->capcov - 1);
			while (m->cov[j].addr != 0 && m->cov[j].addr != addr)
				j = (j + 1) & (m->capcov - 1);
			if (m->cov[j].addr == 0)
				m->cov_full = 1;
			else if (size > m->cov[j].size)
				m->cov[j].size = size;
			return;
		}
		t = calloc((size_t)cap, sizeof *t);
		if (t == NULL) {
			m->cov_full = 1;
			return;
		}
		for (i = 0; i < m->capcov; i++)
			if (m->cov[i].addr != 0)
				cov_put(t, cap, m->cov[i].addr, m->cov[i].size, &n);
		free(m->cov);
		m->cov = t;
		m->capcov = cap;
	}
	cov_put(m->cov, m->capcov, addr, size, &m->ncov);
}

uc_err rs_set_coverage(rs_machine *m, int on)
{
	uc_err e = UC_ERR_OK;
	if (on && m->cov_hook == 0) {
		if (m->cov == NULL) {
			m->capcov = 1 << 12;
			m->cov = calloc((size_t)m->capcov, sizeof *m->cov);
			if (m->cov == NULL) {
				m->capcov = 0;
				return UC_ERR_NOMEM;
			}
		}
		e = uc_hook_add(m->uc, &m->cov_hook, UC_HOOK_BLOCK, (void *)cov_cb, m, 1, 0);
		if (e != UC_ERR_OK)
			m->cov_hook = 0;
		invalidate_all(m);
	} else if (!on && m->cov_hook != 0) {
		e = uc_hook_del(m->uc, m->cov_hook);
		m->cov_hook = 0;
		invalidate_all(m);
	}
	return e;
}

// rs_coverage copies up to max recorded blocks to out and returns how
// many there are in all.
uint64_t rs_coverage(rs_machine *m, rs_cov_entry *out, uint64_t max)
{
	uint64_t i, n = 0;
	for (i = 0; i < m->capcov; i++) {
		if (m->cov[i].addr == 0)
			continue;
		if (n < max)
			out[n] = m->cov[i];
		n++;
	}
	return n;
}

// ---- execution -------------------------------------------------------------

// rs_clear_inflight makes QEMU forget an exception raised but never
// delivered (the interrupt hook stops it), which would turn the next one
// into a double fault: the machine goes back to its creation-time CPU
// state, then gets its registers back.
void rs_clear_inflight(rs_machine *m)
{
	rs_context regs;
	if (m->clean != NULL && rs_read_context(m, &regs) == UC_ERR_OK &&
	    uc_context_restore(m->uc, m->clean) == UC_ERR_OK) {
		watch_reapply(m);
		rs_write_context(m, &regs);
	}
}

// halt_trap turns a run that ended on a hlt inside a halt trap range into
// a trap stop on that hlt (RIP back on it). Such traps need no code hook:
// while no code hook exists, libunicorn keeps RIP exact when a run stops
// between two blocks, which an interrupt relies on (rs_interrupt).
static void halt_trap(rs_machine *m)
{
	uint64_t h = rs_rip(m) - 1;
	uint8_t op = 0;
	int i;
	for (i = 0; i < m->ntraps; i++) {
		rs_trap *t = m->traps[i];
		if (t->halt && h >= t->start && h < t->end && uc_mem_read(m->uc, h, &op, 1) == UC_ERR_OK &&
		    op == 0xF4) {
			m->stop.reason = RS_STOP_TRAP;
			m->stop.pc = h;
			rs_reg_write(m, UC_X86_REG_RIP, h);
			return;
		}
	}
}

void rs_run(rs_machine *m, int mode, uint64_t a, uint64_t b)
{
	uc_err e;
	uint64_t pc = rs_rip(m);
	int want_tracer, tmp = mode == 3;
	memset(&m->stop, 0, sizeof m->stop);
	m->watch_pending = 0;
	m->quantum_left = m->quantum;
	__atomic_store_n(&m->interrupt, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&m->force_intr, 0, __ATOMIC_SEQ_CST);
	m->forced = 0;
	m->start_pc = pc;
	m->skip_bp = (mode != 0 || pc == m->last_pc) && bp_enabled_at(m, pc);
	m->mode = mode;
	m->tracer_first = 1;
	e = watch_prepare(m);
	if (e != UC_ERR_OK) {
		m->stop.reason = RS_STOP_ERROR;
		m->stop.err = e;
		m->stop.pc = pc;
		goto out;
	}
	m->range_start = a;
	m->range_end = b;
	if (mode == 3) {
		// Temporary breakpoints on the successors; their hooks stay
		// (disabled) so that stepping the same place again is cheap.
		if (rs_bp_set(m, a, 2, 1) != UC_ERR_OK || rs_bp_set(m, b, 2, 1) != UC_ERR_OK)
			mode = m->mode = 1;
		m->skip_bp = bp_enabled_at(m, pc);
	}
again:
	want_tracer = mode == 1 || mode == 2 || m->nhookwatches > 0;
	// The tracer stays installed across consecutive steps and is removed
	// by the first plain run that does not need it.
	if (want_tracer && m->tracer_hook == 0) {
		e = uc_hook_add(m->uc, &m->tracer_hook, UC_HOOK_CODE, (void *)tracer_cb, m, 1, 0);
		if (e != UC_ERR_OK) {
			m->tracer_hook = 0;
			m->stop.reason = RS_STOP_ERROR;
			m->stop.err = e;
			m->stop.pc = pc;
			goto out;
		}
		invalidate_all(m);
	} else if (!want_tracer && m->tracer_hook != 0) {
		uc_hook_del(m->uc, m->tracer_hook);
		m->tracer_hook = 0;
		invalidate_all(m);
	}
	watch_settle(m);
	e = emu(m, pc);
	watch_unscratch(m);
	if (m->escaping) {
		// The translator aborted; nothing of that block has run.
		e = UC_ERR_OK;
		if (m->stop.reason == RS_STOP_NONE)
			e = isolate(m, rs_rip(m));
	}
	if (e == UC_ERR_OK && m->stop.reason == RS_STOP_NONE)
		halt_trap(m);
	if (e == UC_ERR_OK && m->stop.reason == RS_STOP_NONE && watch_restart(m)) {
		// A watchpoint changed mode mid-run (watch.c): go on with it.
		pc = rs_rip(m);
		goto again;
	}
	if (e != UC_ERR_OK) {
		if (m->stop.reason == RS_STOP_NONE) {
			m->stop.pc = rs_rip(m);
			switch (e) {
			case UC_ERR_READ_UNMAPPED:
			case UC_ERR_READ_PROT:
				m->stop.reason = RS_STOP_FAULT;
				m->stop.access = RS_READ;
				break;
			case UC_ERR_WRITE_UNMAPPED:
			case UC_ERR_WRITE_PROT:
				m->stop.reason = RS_STOP_FAULT;
				m->stop.access = RS_WRITE;
				break;
			case UC_ERR_FETCH_UNMAPPED:
			case UC_ERR_FETCH_PROT:
				m->stop.reason = RS_STOP_FAULT;
				m->stop.access = RS_EXEC;
				m->stop.addr = m->stop.pc;
				break;
			case UC_ERR_INSN_INVALID:
				m->stop.reason = RS_STOP_ILLEGAL;
				break;
			case UC_ERR_EXCEPTION:
				m->stop.reason = RS_STOP_EXCEPTION;
				break;
			default:
				m->stop.reason = RS_STOP_ERROR;
				break;
			}
		}
		m->stop.err = e;
		// Leave RIP on the faulting instruction, not on its block.
		if (m->stop.reason == RS_STOP_FAULT || m->stop.reason == RS_STOP_ILLEGAL)
			rs_reg_write(m, UC_X86_REG_RIP, m->stop.pc);
	}
	if (m->watch_pending && (m->stop.reason == RS_STOP_NONE || m->stop.reason == RS_STOP_STEP)) {
		m->watch_pending = 0;
		m->stop.reason = RS_STOP_WATCH;
		m->stop.pc = rs_rip(m);
		m->stop.addr = m->watch_addr;
		m->stop.access = m->watch_access;
		m->stop.watch = m->watch_kind;
		m->stop.access_pc = m->watch_pc;
	}
	// The syscall hook runs before RIP moves past the instruction.
	if (m->stop.reason == RS_STOP_NONE || m->stop.reason == RS_STOP_SYSCALL)
		m->stop.pc = rs_rip(m);
	// A block hook that stops does so before the block, but RIP is only
	// stored when a block is left through the execution loop: after a
	// block chained straight into this one it still names an earlier
	// block. The hook knew the address.
	if (m->stop.reason == RS_STOP_POSITION || m->stop.reason == RS_STOP_QUANTUM ||
	    m->stop.reason == RS_STOP_INTERRUPT)
		rs_reg_write(m, UC_X86_REG_RIP, m->stop.pc);
	// A CPU exception stopped in the interrupt hook was never delivered,
	// so QEMU still counts it as in flight: the next contributory one
	// (a second divide error) would become a double fault (vector 8).
	// Go back to the creation-time CPU state, then put the registers back.
	// (Page faults: watch_end.)
	if (m->clean != NULL && (m->stop.reason == RS_STOP_DIVIDE || m->stop.reason == RS_STOP_INT3 ||
				 m->stop.reason == RS_STOP_ILLEGAL || m->stop.reason == RS_STOP_EXCEPTION))
		rs_clear_inflight(m);
	watch_end(m);
out:
	if (tmp) {
		rs_bp *t;
		if ((t = bp_find(m, a)) != NULL)
			t->tmp = 0;
		if ((t = bp_find(m, b)) != NULL)
			t->tmp = 0;
		bp_gc(m);
	}
	m->mode = 0;
	m->last_pc = rs_rip(m);
}

// ---- benchmark baseline ------------------------------------------------------

// rs_raw_run runs code on a bare libunicorn instance (no hooks, no exits)
// mapped like the tests' machine; the baseline of the overhead benchmarks.
uc_err rs_raw_run(const void *code, size_t len)
{
	uc_engine *uc;
	uint64_t sp = 0x20ff00;
	uc_err e = uc_open(UC_ARCH_X86, UC_MODE_64, &uc);
	if (e != UC_ERR_OK)
		return e;
	uc_mem_map(uc, 0x10000, 0x10000, UC_PROT_READ | UC_PROT_EXEC);
	uc_mem_map(uc, 0x200000, 0x10000, UC_PROT_READ | UC_PROT_WRITE);
	uc_mem_map(uc, 0x300000, 0x1000, UC_PROT_READ | UC_PROT_WRITE);
	uc_mem_write(uc, 0x10000, code, len);
	uc_reg_write(uc, UC_X86_REG_RSP, &sp);
	e = uc_emu_start(uc, 0x10000, 0, 0, 0);
	uc_close(uc);
	return e;
}
