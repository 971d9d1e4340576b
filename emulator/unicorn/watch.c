// Page-mode watchpoints: write watchpoints that cost nothing until their
// page is written. See "Watchpoints" in doc.go for the design.
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "machine.h"

// Page table entry bits (Intel SDM vol. 3, 4.5).
#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_US 0x4ULL
#define PTE_A 0x20ULL
#define PTE_D 0x40ULL
#define PTE_PS 0x80ULL
#define PTE_ALL (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D)

#define CR0_WP 0x10000ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL

// The reserved MiB: table pages, the escape and prime pages (machine.h),
// then the flush page, a region of its own whose permissions are flipped
// to make libunicorn flush the TLB.
#define PT_PAGES ((int)(RS_PT_SIZE / 0x1000) - 3)
#define FLUSH_PAGE (RS_PT_BASE + RS_PT_SIZE - 0x1000)

// A page-mode watch whose watchpoint stays removed over this many run
// starts is forgotten and its pages unprotected (GDB removes and inserts
// every watchpoint around each stop; re-protecting costs a TLB flush).
#define IDLE_RUNS 4

// A page whose writes miss the watched bytes costs a fault each (about
// 1.5-3 us); when their handling has taken more than DEMOTE_SHARE of a run
// that had at least DEMOTE_MIN of them, the watches on that page move to
// hook mode, which costs about 5x on all code but nothing per write.
#define DEMOTE_MIN 1024
#define DEMOTE_SHARE 0.5

// The twin's instruction cache: the bytes each start address had when the
// twin last ran it (self-modifying code must be translated again).
#define TWIN_CODE_SLOTS 64

// Written ranges recorded during one twin step (more: everything written
// is invalidated page by page).
#define MAX_WRITES 4

// Registers moved between the machine and the twin, in write order: the
// x87 status word (top of stack) before ST0-7, which are relative to it.
static const int base_ids[] = {
	UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
	UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
	UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
	UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
	UC_X86_REG_RIP, UC_X86_REG_RFLAGS, UC_X86_REG_FS_BASE, UC_X86_REG_GS_BASE,
};
static const int fp_ids[] = {
	UC_X86_REG_FPCW, UC_X86_REG_FPSW, UC_X86_REG_FPTAG, UC_X86_REG_FCS,
	UC_X86_REG_FIP, UC_X86_REG_FDS, UC_X86_REG_FDP, UC_X86_REG_FOP,
	UC_X86_REG_ST0, UC_X86_REG_ST1, UC_X86_REG_ST2, UC_X86_REG_ST3,
	UC_X86_REG_ST4, UC_X86_REG_ST5, UC_X86_REG_ST6, UC_X86_REG_ST7,
	UC_X86_REG_XMM0, UC_X86_REG_XMM1, UC_X86_REG_XMM2, UC_X86_REG_XMM3,
	UC_X86_REG_XMM4, UC_X86_REG_XMM5, UC_X86_REG_XMM6, UC_X86_REG_XMM7,
	UC_X86_REG_XMM8, UC_X86_REG_XMM9, UC_X86_REG_XMM10, UC_X86_REG_XMM11,
	UC_X86_REG_XMM12, UC_X86_REG_XMM13, UC_X86_REG_XMM14, UC_X86_REG_XMM15,
	UC_X86_REG_MXCSR,
};
#define NBASE ((int)(sizeof base_ids / sizeof base_ids[0]))
#define NFP ((int)(sizeof fp_ids / sizeof fp_ids[0]))
#define RIP_SLOT 16

typedef struct regset {
	uint8_t slot[NBASE + NFP][16];
	void *base_ptrs[NBASE];
	void *fp_ptrs[NFP];
} regset;

struct rs_wstate {
	uint8_t *pt;  // host memory behind the table pages
	int mapped;   // tables and flush page mapped in the machine
	int paging;   // CR0.PG and friends set by us
	int dirty;    // tables to rebuild before the next run
	int flush;    // TLB to flush before the next run
	int flip;     // the flush page's next permission

	uint64_t *pages; // protected pages, sorted
	int npages, cappages;

	uc_engine *twin;
	uc_hook th_code, th_write, th_fault, th_intr, th_invalid;
	uint64_t code_pc[TWIN_CODE_SLOTS];
	uint8_t code_bytes[TWIN_CODE_SLOTS][16];

	// The machine at run start: restoring it clears QEMU's record of the
	// exception in flight (see watch_fault).
	uc_context *snap;
	int snap_ok;

	// One twin step.
	int seen;
	int hit;
	uint64_t hit_addr;
	int nwrites;
	uint64_t wlo[MAX_WRITES], whi[MAX_WRITES];
	int stop;        // RS_STOP_* the twin met before finishing, or 0
	int stop_access; // for RS_STOP_FAULT
	uint64_t stop_addr, stop_value;
	int stop_size;
	uint32_t stop_vector;

	// This run: its start, the faults that missed, their time.
	double run_t0, fault_s;
	uint64_t run_misses;
	uint64_t demote_page; // set: restart the run with that page's watches hooked
	int restart;

	regset regs;
	rs_wstats st;
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static struct rs_wstate *ws_get(rs_machine *m)
{
	if (m->ws == NULL) {
		struct rs_wstate *ws = calloc(1, sizeof *ws);
		int i;
		if (ws == NULL)
			return NULL;
		for (i = 0; i < NBASE; i++)
			ws->regs.base_ptrs[i] = ws->regs.slot[i];
		for (i = 0; i < NFP; i++)
			ws->regs.fp_ptrs[i] = ws->regs.slot[NBASE + i];
		m->ws = ws;
	}
	return m->ws;
}

// ---- the twin ---------------------------------------------------------------

// The twin is a second libunicorn engine over the same host memory, with
// no page tables: it runs the one instruction whose write faulted on a
// protected page, with a memory hook that sees the exact addresses.

static void twin_code_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	struct rs_wstate *ws = ud;
	(void)addr;
	(void)size;
	// Called before the first instruction, then before the next one (or
	// the next iteration of a rep instruction): one instruction ran.
	if (ws->seen++ > 0)
		uc_emu_stop(uc);
}

static void twin_write_cb(uc_engine *uc, uc_mem_type type, uint64_t addr, int size,
			  int64_t value, void *ud)
{
	rs_machine *m = ud;
	struct rs_wstate *ws = m->ws;
	uint64_t end = addr + (uint64_t)(size > 0 ? size : 1);
	int i;
	(void)uc;
	(void)type;
	(void)value;
	if (ws->nwrites < MAX_WRITES) {
		ws->wlo[ws->nwrites] = addr;
		ws->whi[ws->nwrites] = end;
	}
	ws->nwrites++;
	if (ws->hit)
		return;
	for (i = 0; i < m->nwatches; i++) {
		rs_watch *w = m->watches[i];
		if (!w->page || !w->on || w->hook != 0 || end <= w->addr || addr >= w->addr + w->size)
			continue;
		ws->hit = 1;
		ws->hit_addr = addr > w->addr ? addr : w->addr;
		return;
	}
}

static bool twin_fault_cb(uc_engine *uc, uc_mem_type type, uint64_t addr, int size,
			  int64_t value, void *ud)
{
	struct rs_wstate *ws = ud;
	(void)uc;
	if (ws->stop != 0)
		return false;
	ws->stop = RS_STOP_FAULT;
	ws->stop_addr = addr;
	ws->stop_size = size;
	ws->stop_value = (uint64_t)value;
	switch (type) {
	case UC_MEM_READ_UNMAPPED:
	case UC_MEM_READ_PROT:
		ws->stop_access = RS_READ;
		break;
	case UC_MEM_WRITE_UNMAPPED:
	case UC_MEM_WRITE_PROT:
		ws->stop_access = RS_WRITE;
		break;
	default:
		ws->stop_access = RS_EXEC;
		break;
	}
	return false;
}

static void twin_intr_cb(uc_engine *uc, uint32_t intno, void *ud)
{
	struct rs_wstate *ws = ud;
	if (ws->stop == 0) {
		ws->stop = intno == 0 ? RS_STOP_DIVIDE : intno == 6 ? RS_STOP_ILLEGAL : RS_STOP_EXCEPTION;
		ws->stop_vector = intno;
	}
	uc_emu_stop(uc);
}

static bool twin_invalid_cb(uc_engine *uc, void *ud)
{
	struct rs_wstate *ws = ud;
	(void)uc;
	if (ws->stop == 0)
		ws->stop = RS_STOP_ILLEGAL;
	return false;
}

uc_err rs_twin_open(rs_machine *m)
{
	struct rs_wstate *ws = ws_get(m);
	uc_engine *t;
	uc_err e;
	if (ws == NULL)
		return UC_ERR_NOMEM;
	if (ws->twin != NULL)
		return UC_ERR_OK;
	e = uc_open(UC_ARCH_X86, UC_MODE_64, &t);
	if (e != UC_ERR_OK)
		return e;
	// As in rs_new: a jump to 0 faults instead of ending the run.
	e = uc_ctl_exits_enable(t);
	if (e == UC_ERR_OK)
		e = uc_hook_add(t, &ws->th_code, UC_HOOK_CODE, (void *)twin_code_cb, ws, 1, 0);
	if (e == UC_ERR_OK)
		e = uc_hook_add(t, &ws->th_write, UC_HOOK_MEM_WRITE, (void *)twin_write_cb, m, 1, 0);
	if (e == UC_ERR_OK)
		e = uc_hook_add(t, &ws->th_fault, UC_HOOK_MEM_INVALID, (void *)twin_fault_cb, ws, 1, 0);
	if (e == UC_ERR_OK)
		e = uc_hook_add(t, &ws->th_intr, UC_HOOK_INTR, (void *)twin_intr_cb, ws, 1, 0);
	if (e == UC_ERR_OK)
		e = uc_hook_add(t, &ws->th_invalid, UC_HOOK_INSN_INVALID, (void *)twin_invalid_cb, ws, 1, 0);
	if (e == UC_ERR_OK && ws->snap == NULL)
		e = uc_context_alloc(m->uc, &ws->snap);
	if (e != UC_ERR_OK) {
		uc_close(t);
		return e;
	}
	ws->twin = t;
	return UC_ERR_OK;
}

uc_err rs_twin_map(rs_machine *m, uint64_t addr, uint64_t size, uint32_t perms, void *host)
{
	if (m->ws == NULL || m->ws->twin == NULL)
		return UC_ERR_OK;
	return uc_mem_map_ptr(m->ws->twin, addr, (size_t)size, perms, host);
}

uc_err rs_twin_unmap(rs_machine *m, uint64_t addr, uint64_t size)
{
	if (m->ws == NULL || m->ws->twin == NULL)
		return UC_ERR_OK;
	return uc_mem_unmap(m->ws->twin, addr, (size_t)size);
}

uc_err rs_twin_protect(rs_machine *m, uint64_t addr, uint64_t size, uint32_t perms)
{
	if (m->ws == NULL || m->ws->twin == NULL)
		return UC_ERR_OK;
	return uc_mem_protect(m->ws->twin, addr, (size_t)size, perms);
}

// needs_fp reports whether the instruction in b may read or write x87,
// MMX or SSE state: everything but the plain integer opcodes, to be safe.
static int needs_fp(const uint8_t *b, int n)
{
	int i = 0;
	uint8_t op;
	while (i < n) {
		uint8_t p = b[i];
		if (p == 0x26 || p == 0x2E || p == 0x36 || p == 0x3E || p == 0x64 || p == 0x65 ||
		    p == 0x66 || p == 0x67 || p == 0xF0 || p == 0xF2 || p == 0xF3 || (p & 0xF0) == 0x40)
			i++;
		else
			break;
	}
	if (i >= n)
		return 1;
	op = b[i];
	if (op == 0x9B || (op >= 0xD8 && op <= 0xDF) || op == 0xC4 || op == 0xC5)
		return 1;
	if (op != 0x0F)
		return 0;
	if (i + 1 >= n)
		return 1;
	op = b[i + 1];
	return !((op >= 0x40 && op <= 0x4F) || (op >= 0x80 && op <= 0x9F) || (op >= 0xA0 && op <= 0xA5) ||
		 (op >= 0xA8 && op <= 0xAD) || op == 0xAF || (op >= 0xB0 && op <= 0xC1) || op == 0xC7 ||
		 (op >= 0xC8 && op <= 0xCF) || (op >= 0x18 && op <= 0x1F) || op == 0x0D || op == 0x31);
}

// twin_code_sync drops the twin's translation of pc when the bytes there
// changed since it last ran them.
static void twin_code_sync(struct rs_wstate *ws, uint64_t pc, const uint8_t *b)
{
	int k = (int)((pc ^ (pc >> 7)) % TWIN_CODE_SLOTS);
	if (ws->code_pc[k] == pc && memcmp(ws->code_bytes[k], b, 16) == 0)
		return;
	if (ws->code_pc[k] != 0 || pc == 0)
		uc_ctl_remove_cache(ws->twin, pc, pc + 16);
	ws->code_pc[k] = pc;
	memcpy(ws->code_bytes[k], b, 16);
}

static uint64_t slot64(regset *r, int i)
{
	uint64_t v;
	memcpy(&v, r->slot[i], 8);
	return v;
}

// ---- page tables ---------------------------------------------------------------

static uint64_t *table(struct rs_wstate *ws, int page)
{
	return (uint64_t *)(ws->pt + (size_t)page * 0x1000);
}

static int table_of(uint64_t entry)
{
	return (int)(((entry & 0x000FFFFFFFFFF000ULL) - RS_PT_BASE) / 0x1000);
}

static int page_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

// collect fills ws->pages with the pages of every page-mode watch.
static uc_err collect(rs_machine *m, struct rs_wstate *ws)
{
	int i, j, n = 0;
	for (i = 0; i < m->nwatches; i++) {
		rs_watch *w = m->watches[i];
		uint64_t p;
		if (!w->page || w->hook != 0 || (w->hot && !w->on))
			continue;
		for (p = w->addr & ~0xFFFULL; p <= ((w->addr + w->size - 1) & ~0xFFFULL); p += 0x1000) {
			if (n == ws->cappages) {
				int cap = ws->cappages ? ws->cappages * 2 : 64;
				uint64_t *np = realloc(ws->pages, (size_t)cap * sizeof *np);
				if (np == NULL)
					return UC_ERR_NOMEM;
				ws->pages = np;
				ws->cappages = cap;
			}
			ws->pages[n++] = p;
		}
	}
	qsort(ws->pages, (size_t)n, sizeof *ws->pages, page_cmp);
	for (i = j = 0; i < n; i++)
		if (j == 0 || ws->pages[j - 1] != ws->pages[i])
			ws->pages[j++] = ws->pages[i];
	ws->npages = j;
	return UC_ERR_OK;
}

// build writes the tables: every address maps with full permissions
// through 1 GiB pages, except the protected pages, read-only through a
// 4 KiB entry each. libunicorn maps every guest address to the same
// physical address whatever the entry says, so entries only carry
// permissions: leaves point at physical 0.
//
//	page 0  PML4: each entry -> page 1 (or a private PDPT)
//	page 1  PDPT shared by all: 512 x 1 GiB, RW|US
//	page 2+ a private PDPT, PD (512 x 2 MiB) or PT (512 x 4 KiB) on the
//	        path to each protected page
static uc_err build(struct rs_wstate *ws)
{
	uint64_t *pml4 = table(ws, 0), *full = table(ws, 1);
	int next = 2, i, k;
	for (i = 0; i < 512; i++) {
		full[i] = PTE_ALL | PTE_PS;
		pml4[i] = (RS_PT_BASE + 0x1000) | PTE_ALL;
	}
	for (k = 0; k < ws->npages; k++) {
		uint64_t v = ws->pages[k], *pdpt, *pd, *pt;
		int i4 = (int)((v >> 39) & 511), i3 = (int)((v >> 30) & 511), i2 = (int)((v >> 21) & 511);
		if (table_of(pml4[i4]) == 1) {
			if (next == PT_PAGES)
				return UC_ERR_NOMEM;
			memcpy(table(ws, next), full, 0x1000);
			pml4[i4] = (RS_PT_BASE + (uint64_t)next * 0x1000) | PTE_ALL;
			next++;
		}
		pdpt = table(ws, table_of(pml4[i4]));
		if (pdpt[i3] & PTE_PS) {
			if (next == PT_PAGES)
				return UC_ERR_NOMEM;
			pd = table(ws, next);
			for (i = 0; i < 512; i++)
				pd[i] = PTE_ALL | PTE_PS;
			pdpt[i3] = (RS_PT_BASE + (uint64_t)next * 0x1000) | PTE_ALL;
			next++;
		}
		pd = table(ws, table_of(pdpt[i3]));
		if (pd[i2] & PTE_PS) {
			if (next == PT_PAGES)
				return UC_ERR_NOMEM;
			pt = table(ws, next);
			for (i = 0; i < 512; i++)
				pt[i] = PTE_ALL;
			pd[i2] = (RS_PT_BASE + (uint64_t)next * 0x1000) | PTE_ALL;
			next++;
		}
		pt = table(ws, table_of(pd[i2]));
		pt[(v >> 12) & 511] = PTE_ALL & ~PTE_RW;
	}
	return UC_ERR_OK;
}

static int protected_page(struct rs_wstate *ws, uint64_t page)
{
	int lo = 0, hi = ws->npages;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (ws->pages[mid] < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ws->npages && ws->pages[lo] == page;
}

static uc_err map_tables(rs_machine *m, struct rs_wstate *ws)
{
	uc_err e;
	if (ws->mapped)
		return UC_ERR_OK;
	if (ws->pt == NULL) {
		ws->pt = rs_host_map((uint64_t)PT_PAGES * 0x1000);
		if (ws->pt == NULL)
			return UC_ERR_NOMEM;
	}
	// No guest access: the walker reads physical memory, which ignores
	// libunicorn's permissions.
	e = uc_mem_map_ptr(m->uc, RS_PT_BASE, (size_t)PT_PAGES * 0x1000, UC_PROT_NONE, ws->pt);
	if (e != UC_ERR_OK)
		return e;
	e = uc_mem_map(m->uc, FLUSH_PAGE, 0x1000, UC_PROT_NONE);
	if (e != UC_ERR_OK) {
		uc_mem_unmap(m->uc, RS_PT_BASE, (size_t)PT_PAGES * 0x1000);
		return e;
	}
	ws->mapped = 1;
	return UC_ERR_OK;
}

// set_paging turns the guest's paging on or off. The registers are
// written as values: libunicorn neither checks them nor flushes anything.
static void set_paging(rs_machine *m, int on)
{
	uint64_t cr0 = 0, cr4 = 0;
	rs_reg_read(m, UC_X86_REG_CR0, &cr0);
	rs_reg_read(m, UC_X86_REG_CR4, &cr4);
	if (on) {
		rs_reg_write(m, UC_X86_REG_CR4, cr4 | CR4_PAE);
		rs_reg_write(m, UC_X86_REG_CR3, RS_PT_BASE);
		rs_reg_write(m, UC_X86_REG_CR0, cr0 | CR0_PG | CR0_WP);
	} else {
		rs_reg_write(m, UC_X86_REG_CR0, cr0 & ~(CR0_PG | CR0_WP));
	}
}

// flush_tlb makes libunicorn drop every TLB entry. Its API has no call
// for that (uc_ctl_flush_tlb flushes translated code), but every change of
// the memory map does: the flush page's permissions are flipped between
// none and write-only, which changes its read-only flag and so the map.
static void flush_tlb(rs_machine *m, struct rs_wstate *ws)
{
	ws->flip ^= 1;
	uc_mem_protect(m->uc, FLUSH_PAGE, 0x1000, ws->flip ? UC_PROT_WRITE : UC_PROT_NONE);
	ws->st.flushes++;
}

// apply rebuilds the tables from the watch list. Protection only added
// needs a TLB flush before the guest runs again; protection lifted does
// not (a read-only entry in the TLB makes the next write walk the tables
// again).
static uc_err apply(rs_machine *m, struct rs_wstate *ws, int added)
{
	int before = ws->npages;
	uc_err e = collect(m, ws);
	if (e != UC_ERR_OK)
		return e;
	if (ws->npages == 0) {
		if (ws->paging) {
			set_paging(m, 0);
			ws->paging = 0;
		}
		ws->st.released += (uint64_t)before;
		return UC_ERR_OK;
	}
	e = map_tables(m, ws);
	if (e == UC_ERR_OK)
		e = build(ws);
	if (e != UC_ERR_OK)
		return e;
	if (!ws->paging) {
		set_paging(m, 1);
		ws->paging = 1;
		added = 1; // entries made without paging allow everything
	}
	if (added)
		ws->flush = 1;
	else if (before > ws->npages)
		ws->st.released += (uint64_t)(before - ws->npages);
	return UC_ERR_OK;
}

static rs_watch *pwatch_find(rs_machine *m, uint64_t addr, uint64_t size, int *idx)
{
	int i;
	for (i = 0; i < m->nwatches; i++) {
		rs_watch *w = m->watches[i];
		if (w->page && w->addr == addr && w->size == size) {
			if (idx != NULL)
				*idx = i;
			return w;
		}
	}
	return NULL;
}

uc_err rs_pwatch_add(rs_machine *m, uint64_t addr, uint64_t size)
{
	struct rs_wstate *ws = m->ws;
	rs_watch *w;
	uc_err e;
	if (ws == NULL || ws->twin == NULL)
		return UC_ERR_ARG; // rs_twin_open first
	w = pwatch_find(m, addr, size, NULL);
	if (w != NULL) {
		// Its pages are still protected, or it needs its hook again.
		w->on = 1;
		w->idle = 0;
		return w->hot && w->hook == 0 ? watch_hook(m, w) : UC_ERR_OK;
	}
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
	w->kind = 1;
	w->page = 1;
	w->on = 1;
	m->watches[m->nwatches++] = w;
	e = apply(m, ws, 1);
	if (e != UC_ERR_OK) {
		free(m->watches[--m->nwatches]);
		apply(m, ws, 0);
	}
	return e;
}

uc_err rs_pwatch_remove(rs_machine *m, uint64_t addr, uint64_t size)
{
	rs_watch *w = pwatch_find(m, addr, size, NULL);
	if (w == NULL || !w->on)
		return UC_ERR_ARG;
	// Kept protected for a while: GDB inserts it again before resuming.
	// A hook is not kept: it costs on every instruction.
	w->on = 0;
	w->idle = 0;
	watch_unhook(m, w);
	return UC_ERR_OK;
}

// watch_restart moves the watches of a page written too often to hook mode
// (watch_fault stopped the run for it); rs_run then goes on. Returns 0
// when there is nothing to do.
int watch_restart(rs_machine *m)
{
	struct rs_wstate *ws = m->ws;
	uint64_t page;
	int i;
	if (ws == NULL || !ws->restart)
		return 0;
	ws->restart = 0;
	page = ws->demote_page;
	for (i = 0; i < m->nwatches; i++) {
		rs_watch *w = m->watches[i];
		if (!w->page || !w->on || w->hook != 0 || page + 0x1000 <= w->addr || page >= w->addr + w->size)
			continue;
		w->hot = 1;
		if (watch_hook(m, w) == UC_ERR_OK)
			ws->st.demoted++;
	}
	apply(m, ws, 0);
	return 1;
}

// watch_prepare runs at every run start: forgets watches removed long
// enough ago, brings the tables and the TLB up to date and saves the
// machine for watch_fault. Returns 0, or a uc_err.
int watch_prepare(rs_machine *m)
{
	struct rs_wstate *ws = m->ws;
	int i, gone = 0;
	if (ws == NULL)
		return UC_ERR_OK;
	for (i = 0; i < m->nwatches; i++) {
		rs_watch *w = m->watches[i];
		if (w->page && !w->on && ++w->idle > IDLE_RUNS) {
			free(w);
			m->watches[i--] = m->watches[--m->nwatches];
			gone = 1;
		}
	}
	if (gone) {
		uc_err e = apply(m, ws, 0);
		if (e != UC_ERR_OK)
			return e;
	}
	ws->restart = 0;
	ws->run_misses = 0;
	ws->fault_s = 0;
	ws->run_t0 = now_s();
	if (!ws->paging)
		return UC_ERR_OK;
	if (ws->flush) {
		flush_tlb(m, ws);
		ws->flush = 0;
	}
	ws->snap_ok = uc_context_save(m->uc, ws->snap) == UC_ERR_OK;
	return UC_ERR_OK;
}

int watch_paging(rs_machine *m)
{
	return m->ws != NULL && m->ws->paging;
}

// watch_reapply sets the paging registers again after rs_run restored the
// machine's creation-time context.
void watch_reapply(rs_machine *m)
{
	if (m->ws != NULL && m->ws->paging)
		set_paging(m, 1);
}

// watch_fault handles a page fault (vector 14) while the guest runs; it
// returns 0 when the fault is not one of ours. The fault is exact: QEMU
// restored RIP, the registers and the flags to the start of the faulting
// instruction (libunicorn's protection faults are not: they leave RIP at
// the start of the block, see "Faults and their PC" in doc.go). The
// instruction runs in the twin, which shares the memory and sees each
// address written; the twin's registers come back, and the run goes on,
// or stops after the instruction if it wrote a watched byte.
int watch_fault(rs_machine *m, uint32_t intno)
{
	struct rs_wstate *ws = m->ws;
	regset *r;
	uint64_t cr2 = 0, pc, next;
	uint8_t code[16];
	int fp, i;
	uc_err e;
	double t0;
	if (ws == NULL || !ws->paging || !ws->snap_ok || intno != 14)
		return 0;
	rs_reg_read(m, UC_X86_REG_CR2, &cr2);
	if (!protected_page(ws, cr2 & ~0xFFFULL))
		return 0;
	t0 = now_s();
	ws->st.faults++;
	r = &ws->regs;
	uc_reg_read_batch(m->uc, (int *)base_ids, r->base_ptrs, NBASE);
	uc_reg_read_batch(m->uc, (int *)fp_ids, r->fp_ptrs, NFP);
	pc = slot64(r, RIP_SLOT);
	memset(code, 0, sizeof code);
	for (i = 16; i > 0; i--)
		if (uc_mem_read(m->uc, pc, code, (size_t)i) == UC_ERR_OK)
			break;
	fp = needs_fp(code, i);
	twin_code_sync(ws, pc, code);

	uc_reg_write_batch(ws->twin, (int *)base_ids, r->base_ptrs, NBASE);
	if (fp)
		uc_reg_write_batch(ws->twin, (int *)fp_ids, r->fp_ptrs, NFP);
	ws->seen = 0;
	ws->hit = 0;
	ws->nwrites = 0;
	ws->stop = 0;
	e = uc_emu_start(ws->twin, pc, 0, 0, 0);
	next = pc;
	uc_reg_read(ws->twin, UC_X86_REG_RIP, &next);
	if (ws->stop == RS_STOP_FAULT && ws->stop_access == RS_EXEC && ws->stop_addr != pc) {
		// The instruction completed and jumped to unmapped or
		// non-executable code: the machine will fault there itself.
		ws->stop = 0;
		next = ws->stop_addr;
	} else if (ws->stop == 0 && e != UC_ERR_OK) {
		ws->stop = RS_STOP_ERROR;
	}
	if (ws->stop == 0) {
		uc_reg_read_batch(ws->twin, (int *)base_ids, r->base_ptrs, NBASE);
		memcpy(r->slot[RIP_SLOT], &next, 8);
		if (fp)
			uc_reg_read_batch(ws->twin, (int *)fp_ids, r->fp_ptrs, NFP);
	}

	// QEMU counts the page fault as in flight until it is delivered,
	// which the interrupt hook prevents: the next one would become a
	// double fault. The run-start context does not have it: the registers
	// are written into that context, which then replaces the machine's.
	// (Writing RIP to the machine itself would also make libunicorn drop
	// any stop requested from this hook.)
	uc_context_reg_write_batch(ws->snap, (int *)fp_ids, r->fp_ptrs, NFP);
	uc_context_reg_write_batch(ws->snap, (int *)base_ids, r->base_ptrs, NBASE);
	uc_context_restore(m->uc, ws->snap);

	// Translated code of the machine does not know the twin's writes.
	if (ws->nwrites > MAX_WRITES) {
		for (i = 0; i < MAX_WRITES; i++)
			ws->whi[i] = (ws->whi[i] + 0xFFF) & ~0xFFFULL;
		ws->nwrites = MAX_WRITES;
	}
	for (i = 0; i < ws->nwrites; i++)
		uc_ctl_remove_cache(m->uc, ws->wlo[i], ws->whi[i]);

	count_twin(m, pc, ws->stop == 0);
	if (ws->stop != 0) {
		// The instruction did not complete (a fault, an exception): the
		// machine stops on it as if it had run it, with an exact PC.
		if (m->stop.reason == RS_STOP_NONE) {
			m->stop.reason = ws->stop;
			m->stop.pc = pc;
			m->stop.addr = ws->stop_addr;
			m->stop.access = ws->stop_access;
			m->stop.value = ws->stop_value;
			m->stop.size = ws->stop_size;
			m->stop.vector = ws->stop_vector;
			m->stop.exact = 1;
		}
		uc_emu_stop(m->uc);
		return 1;
	}
	if (!ws->hit) {
		double t1 = now_s();
		ws->fault_s += t1 - t0;
		if (++ws->run_misses >= DEMOTE_MIN && ws->fault_s > DEMOTE_SHARE * (t1 - ws->run_t0) &&
		    !ws->restart) {
			ws->restart = 1;
			ws->demote_page = cr2 & ~0xFFFULL;
			uc_emu_stop(m->uc);
		}
		return 1;
	}
	{
		ws->st.hits++;
		if (m->stop.reason == RS_STOP_NONE) {
			m->stop.reason = RS_STOP_WATCH;
			m->stop.pc = next;
			m->stop.addr = ws->hit_addr;
			m->stop.access = RS_WRITE;
			m->stop.watch = 0; // WatchWrite
			m->stop.access_pc = pc;
		}
		uc_emu_stop(m->uc);
	}
	return 1;
}

rs_wstats rs_watch_stats(rs_machine *m)
{
	rs_wstats s;
	memset(&s, 0, sizeof s);
	if (m->ws != NULL) {
		s = m->ws->st;
		s.pages = m->ws->npages;
	}
	return s;
}

void watch_close(rs_machine *m)
{
	struct rs_wstate *ws = m->ws;
	if (ws == NULL)
		return;
	if (ws->twin != NULL)
		uc_close(ws->twin);
	if (ws->snap != NULL)
		uc_context_free(ws->snap);
	if (ws->pt != NULL)
		rs_host_unmap(ws->pt, (uint64_t)PT_PAGES * 0x1000);
	free(ws->pages);
	free(ws);
	m->ws = NULL;
}
