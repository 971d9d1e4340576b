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

// CR2 between runs with exact faults: non-canonical, so no page fault
// leaves it (see watch_prepare).
#define CR2_CLEAN 0x8000000000000000ULL

// Scratch pages watch_exact_fault may map in one run (one is enough: the
// first fault stops the run).
#define MAX_SCRATCH 4

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
	int exact;       // the tables mirror the memory map (exact faults)
	struct pt_run *runs; // the map as build sees it
	int nruns, capruns;
	int shared;           // build: the PDPT uniform PML4 entries share, or -1
	uint64_t shared_bits; // its leaves' bits
	uint64_t scratch[MAX_SCRATCH]; // pages mapped by watch_exact_fault
	int nscratch;
	int pending;                   // watch_exact_fault let an access through
	int inflight;                  // watch_fault stopped on it (a #GP leaves CR2 alone)
	uint64_t pend_addr, pend_value; // that access
	int pend_access, pend_size;

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
	rs_fast_twin(m->fast, t);
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

// A run of the address space whose pages all get the same leaf entry.
typedef struct pt_run {
	uint64_t lo, hi; // [lo, hi), page-aligned
	uint64_t bits;   // leaf entry bits; 0: not present
} pt_run;

// leaf_bits gives the entry bits of pages with libunicorn permissions p.
static uint64_t leaf_bits(uint32_t p)
{
	if (p == UC_PROT_NONE)
		return 0;
	return (p & UC_PROT_WRITE) ? PTE_ALL : PTE_ALL & ~(PTE_RW | PTE_D);
}

// add_run appends [lo, hi) with bits, merging it into the last run when
// they touch and agree.
static uc_err add_run(struct rs_wstate *ws, uint64_t lo, uint64_t hi, uint64_t bits)
{
	if (ws->nruns > 0) {
		pt_run *last = &ws->runs[ws->nruns - 1];
		if (last->hi == lo && last->bits == bits) {
			last->hi = hi;
			return UC_ERR_OK;
		}
	}
	if (ws->nruns == ws->capruns) {
		int cap = ws->capruns ? ws->capruns * 2 : 64;
		pt_run *nr = realloc(ws->runs, (size_t)cap * sizeof *nr);
		if (nr == NULL)
			return UC_ERR_NOMEM;
		ws->runs = nr;
		ws->capruns = cap;
	}
	ws->runs[ws->nruns].lo = lo;
	ws->runs[ws->nruns].hi = hi;
	ws->runs[ws->nruns].bits = bits;
	ws->nruns++;
	return UC_ERR_OK;
}

// collect_runs describes the address space the tables give. Without exact
// faults, everything is present and writable (only the protected pages
// differ, see build). With them, the tables mirror libunicorn's map:
// unmapped and PROT_NONE pages are not present, pages without write
// permission are read-only, so that every access libunicorn would refuse
// raises a page fault first, which QEMU delivers with RIP, the registers
// and the flags restored to the faulting instruction. The reserved MiB
// stays present: the escape page must reach libunicorn's own fetch fault
// (see "Translator aborts" in doc.go).
static uc_err collect_runs(rs_machine *m, struct rs_wstate *ws)
{
	const uint64_t rlo = RS_PT_BASE, rhi = RS_PT_BASE + RS_PT_SIZE;
	uc_mem_region *r = NULL;
	uint32_t n = 0, i;
	int reserved = 0;
	uc_err e;
	ws->nruns = 0;
	if (!ws->exact)
		return add_run(ws, 0, 1ULL << 48, PTE_ALL);
	e = uc_mem_regions(m->uc, &r, &n);
	if (e != UC_ERR_OK)
		return e;
	// Regions come sorted and none overlaps the reserved MiB (Map
	// refuses it) except the MiB's own.
	for (i = 0; i < n && e == UC_ERR_OK; i++) {
		uint64_t lo = r[i].begin, hi = r[i].end + 1;
		if (lo >= rlo && hi <= rhi)
			continue;
		if (!reserved && lo >= rhi) {
			e = add_run(ws, rlo, rhi, PTE_ALL);
			reserved = 1;
		}
		if (e == UC_ERR_OK && leaf_bits(r[i].perms) != 0)
			e = add_run(ws, lo, hi, leaf_bits(r[i].perms));
	}
	if (e == UC_ERR_OK && !reserved)
		e = add_run(ws, rlo, rhi, PTE_ALL);
	uc_free(r);
	return e;
}

// first_run returns the index of the first run that ends after addr.
static int first_run(struct rs_wstate *ws, uint64_t addr)
{
	int lo = 0, hi = ws->nruns;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (ws->runs[mid].hi <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

// first_page returns the index of the first protected page at or above
// addr.
static int first_page(struct rs_wstate *ws, uint64_t addr)
{
	int lo = 0, hi = ws->npages;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (ws->pages[mid] < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

// classify tells how [lo, hi) maps: 1 and *bits when every page of it
// gets the same leaf entry (*bits 0: none present), 0 when it is mixed.
static int classify(struct rs_wstate *ws, uint64_t lo, uint64_t hi, uint64_t *bits)
{
	int i = first_run(ws, lo), k = first_page(ws, lo);
	int prot = k < ws->npages && ws->pages[k] < hi;
	if (i == ws->nruns || ws->runs[i].lo >= hi) {
		*bits = 0;
		return 1; // nothing mapped (a protected page there is moot)
	}
	if (ws->runs[i].lo > lo || ws->runs[i].hi < hi)
		return 0;
	*bits = ws->runs[i].bits;
	if (prot && (*bits & PTE_RW)) {
		if (hi - lo > 0x1000)
			return 0;
		*bits &= ~(PTE_RW | PTE_D);
	}
	return 1;
}

// fill writes table page t of the given level (3: PML4, 0: page table)
// for the addresses from base, taking new table pages from *next.
static uc_err fill(struct rs_wstate *ws, int t, int level, uint64_t base, int *next)
{
	uint64_t *tab = table(ws, t), size = 1ULL << (12 + 9 * level);
	int i;
	for (i = 0; i < 512; i++) {
		uint64_t lo = base + (uint64_t)i * size, bits = 0;
		int child, uni = classify(ws, lo, lo + size, &bits);
		uc_err e;
		if (uni && (bits == 0 || level < 3)) {
			tab[i] = bits == 0 ? 0 : level == 0 ? bits : bits | PTE_PS;
			continue;
		}
		// Mixed, or a PML4 entry (no large pages there): a table below.
		// Uniform PML4 entries share one PDPT of 1 GiB pages per kind
		// (without exact faults the whole space is one kind).
		if (level == 3 && uni && ws->shared >= 0 && ws->shared_bits == bits) {
			tab[i] = (RS_PT_BASE + (uint64_t)ws->shared * 0x1000) | PTE_ALL;
			continue;
		}
		if (*next == PT_PAGES)
			return UC_ERR_NOMEM;
		child = (*next)++;
		memset(table(ws, child), 0, 0x1000);
		tab[i] = (RS_PT_BASE + (uint64_t)child * 0x1000) | PTE_ALL;
		e = fill(ws, child, level - 1, lo, next);
		if (e != UC_ERR_OK)
			return e;
		if (level == 3 && uni) {
			ws->shared = child;
			ws->shared_bits = bits;
		}
	}
	return UC_ERR_OK;
}

// build writes the tables from the runs and the protected pages (each
// read-only through a 4 KiB entry). libunicorn maps every guest address
// to the same physical address whatever the entry says, so entries only
// carry permissions: leaves point at physical 0. Large pages cover what
// is uniform; a table page is spent only where a range is mixed.
static uc_err build(rs_machine *m, struct rs_wstate *ws)
{
	int next = 1;
	uc_err e = collect_runs(m, ws);
	if (e != UC_ERR_OK)
		return e;
	memset(table(ws, 0), 0, 0x1000);
	ws->shared = -1;
	e = fill(ws, 0, 3, 0, &next);
	ws->st.tables = next;
	return e;
}

static int protected_page(struct rs_wstate *ws, uint64_t page)
{
	int k = first_page(ws, page);
	return k < ws->npages && ws->pages[k] == page;
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

// apply rebuilds the tables from the watch list (and, with exact faults,
// the memory map). Protection only added needs a TLB flush before the
// guest runs again; protection lifted does not (a read-only entry in the
// TLB makes the next write walk the tables again). A change of the memory
// map comes with added set: libunicorn flushed the TLB itself when the
// map changed, the flush before the next run is kept for safety. When the
// map needs more table pages than the reserved MiB holds, exact faults are
// given up and the decoder takes over again (rs_exact_paging_state).
static uc_err apply(rs_machine *m, struct rs_wstate *ws, int added)
{
	int before = ws->npages;
	uc_err e = collect(m, ws);
	if (e != UC_ERR_OK)
		return e;
	if (ws->npages == 0 && !ws->exact) {
		if (ws->paging) {
			set_paging(m, 0);
			ws->paging = 0;
		}
		ws->st.released += (uint64_t)before;
		return UC_ERR_OK;
	}
	e = map_tables(m, ws);
	if (e == UC_ERR_OK)
		e = build(m, ws);
	if (e == UC_ERR_OK)
		ws->dirty = 0;
	if (e == UC_ERR_NOMEM && ws->exact) {
		ws->exact = 0;
		ws->st.overflows++;
		return apply(m, ws, 1);
	}
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

// tables_deny reports whether the tables refuse the access (a write if
// write) to addr: an entry on the way is not present, or the leaf is
// read-only for a write. Intermediate entries allow everything.
static int tables_deny(struct rs_wstate *ws, uint64_t addr, int write)
{
	uint64_t *t = table(ws, 0), e;
	int level;
	for (level = 3; level >= 0; level--) {
		e = t[(addr >> (12 + 9 * level)) & 511];
		if (!(e & PTE_P))
			return 1;
		if (level == 0 || (level < 3 && (e & PTE_PS)))
			return write && !(e & PTE_RW);
		t = table(ws, table_of(e));
	}
	return 0;
}

// canonical reports whether addr is a canonical 48-bit address.
static int canonical(uint64_t addr)
{
	int64_t top = (int64_t)addr >> 47;
	return top == 0 || top == -1;
}

// watch_exact_fault runs in the memory hook before libunicorn's own data
// fault, which would leave RIP at a block start. With exact faults, it
// lets the access go on to the table walk, which refuses it with a page
// fault that QEMU delivers exactly; watch_fault then stops with the
// access recorded here. An unmapped page is mapped for the moment (a
// scratch page, absent from the tables and the twin), because libunicorn
// refuses an unmapped address before any walk; rs_run unmaps it when the
// run ends.
// Returns 1 when the access is to go on; what it was is kept for
// watch_fault. A non-canonical address gets the same treatment: the
// access then raises #GP, as exact. The reserved MiB does not qualify.
int watch_exact_fault(rs_machine *m, int type, uint64_t addr, int size, uint64_t value)
{
	struct rs_wstate *ws = m->ws;
	int write = type == UC_MEM_WRITE_UNMAPPED || type == UC_MEM_WRITE_PROT;
	uint64_t page = addr & ~0xFFFULL;
	if (ws == NULL || !ws->exact || !ws->paging || !ws->snap_ok)
		return 0;
	if (type != UC_MEM_READ_UNMAPPED && type != UC_MEM_WRITE_UNMAPPED &&
	    type != UC_MEM_READ_PROT && type != UC_MEM_WRITE_PROT)
		return 0;
	if (addr >= RS_PT_BASE && addr < RS_PT_BASE + RS_PT_SIZE)
		return 0;
	// A non-canonical address raises #GP before any walk, just as exactly.
	if (canonical(addr) && !tables_deny(ws, addr, write))
		return 0;
	if (type == UC_MEM_READ_UNMAPPED || type == UC_MEM_WRITE_UNMAPPED) {
		if (ws->nscratch == MAX_SCRATCH)
			return 0;
		if (uc_mem_map(m->uc, page, 0x1000, UC_PROT_READ | UC_PROT_WRITE) != UC_ERR_OK)
			return 0;
		ws->scratch[ws->nscratch++] = page;
	}
	ws->pending = 1;
	ws->pend_addr = addr;
	ws->pend_access = write ? RS_WRITE : RS_READ;
	ws->pend_size = size;
	ws->pend_value = value;
	return 1;
}

// clear_fault makes the machine forget a page fault left in flight, with
// exact faults: one raised since CR2 was last reset (a fault, not
// delivered, sets CR2; every run leaves it at CR2_CLEAN), or the #GP of a
// fault the run stopped on (inflight). Returns 1 when there was one.
static int clear_fault(rs_machine *m)
{
	struct rs_wstate *ws = m->ws;
	uint64_t cr2 = CR2_CLEAN;
	if (ws == NULL || !ws->exact || !ws->paging)
		return 0;
	rs_reg_read(m, UC_X86_REG_CR2, &cr2);
	if (cr2 == CR2_CLEAN && !ws->inflight)
		return 0;
	rs_clear_inflight(m);
	rs_reg_write(m, UC_X86_REG_CR2, CR2_CLEAN);
	ws->inflight = 0;
	return 1;
}

// watch_end runs at the end of every run: a fault the run stopped on
// (QEMU may raise it once more before the stop takes effect) or a code
// lookup of libunicorn's during it (a step's temporary breakpoints on an
// unmapped successor) is still in flight (clear_fault).
void watch_end(rs_machine *m)
{
	clear_fault(m);
}

// watch_settle runs just before a run's guest code: what rs_run did after
// watch_prepare (a step's temporary breakpoints and the tracer drop
// translations, and libunicorn looks the code up: on an unmapped
// successor that leaves a page fault in flight) must not turn the run's
// first page fault into a double fault (FuzzGuestCode: "pop rsp" with a
// zero stack, then a call, stepped, stopped on vector 8).
void watch_settle(rs_machine *m)
{
	clear_fault(m);
}

// watch_unscratch unmaps the scratch pages of watch_exact_fault.
void watch_unscratch(rs_machine *m)
{
	struct rs_wstate *ws = m->ws;
	if (ws == NULL)
		return;
	ws->pending = 0;
	while (ws->nscratch > 0)
		uc_mem_unmap(m->uc, ws->scratch[--ws->nscratch], 0x1000);
}

// rs_exact_paging turns exact faults by paging on or off (the twin must be
// open: rs_twin_open). See "Faults and their PC" in doc.go.
uc_err rs_exact_paging(rs_machine *m, int on)
{
	struct rs_wstate *ws = m->ws;
	if (ws == NULL || ws->twin == NULL)
		return UC_ERR_ARG;
	ws->exact = on != 0;
	return apply(m, ws, 1);
}

// watch_sync brings tables left to rebuild up to date now: for the
// accesses outside runs that walk them (a selector load).
void watch_sync(rs_machine *m)
{
	if (m->ws != NULL && m->ws->exact && m->ws->dirty)
		apply(m, m->ws, 1);
}

// rs_exact_paging_state is 1 while the tables mirror the memory map.
int rs_exact_paging_state(rs_machine *m)
{
	return m->ws != NULL && m->ws->exact && m->ws->paging;
}

// rs_map_changed brings the tables up to date after a change of the memory
// map (Map, Unmap, Protect): at once from a hook while the guest runs,
// else before the next run starts (watch_prepare).
uc_err rs_map_changed(rs_machine *m)
{
	if (m->ws == NULL || !m->ws->exact)
		return UC_ERR_OK;
	if (!m->in_run) {
		// A loader maps hundreds of regions: build once, at the run.
		m->ws->dirty = 1;
		return UC_ERR_OK;
	}
	return apply(m, m->ws, 1);
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
	if (gone || ws->dirty) {
		uc_err e = apply(m, ws, ws->dirty);
		if (e != UC_ERR_OK)
			return e;
	}
	ws->restart = 0;
	ws->run_misses = 0;
	ws->fault_s = 0;
	ws->run_t0 = now_s();
	if (!ws->paging)
		return UC_ERR_OK;
	// libunicorn looks code up outside runs (dropping translations,
	// deleting hooks): on an address the tables refuse, that raises a
	// page fault it ignores, but QEMU keeps it as in flight.
	if (clear_fault(m))
		ws->st.probes++;
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

// watch_fault handles a page fault (vector 14, or 13: the #GP of a
// non-canonical access watch_exact_fault let through) while the guest runs; it
// returns 0 when the fault is not one of ours. The fault is exact: QEMU
// restored RIP, the registers and the flags to the start of the faulting
// instruction (libunicorn's protection faults are not: they leave RIP at
// the start of the block, see "Faults and their PC" in doc.go). The
// instruction runs in the twin, which shares the memory and sees each
// address written; the twin's registers come back, and the run goes on,
// or stops after the instruction if it wrote a watched byte. With exact
// faults (rs_exact_paging) the fault of an access watch_exact_fault let
// through stops the machine at once, with that access; any other page
// fault outside the protected pages runs in the twin too, and if the twin
// runs it through, the tables were stale and the run goes on.
int watch_fault(rs_machine *m, uint32_t intno)
{
	rs_fast_cur fcur;
	struct rs_wstate *ws = m->ws;
	regset *r;
	uint64_t cr2 = 0, pc, next;
	uint8_t code[16];
	int fp, i;
	uc_err e;
	double t0;
	int prot;
	if (ws == NULL || !ws->paging || (intno != 14 && intno != 13))
		return 0;
	rs_reg_read(m, UC_X86_REG_CR2, &cr2);
	if (ws->pending && (intno == 13 ? !canonical(ws->pend_addr) : (ws->pend_addr & ~0xFFFULL) == (cr2 & ~0xFFFULL))) {
		// The fault watch_exact_fault let through: the memory hook told
		// what the access was, and QEMU put RIP and the registers on
		// the instruction. No twin: an instruction the translator
		// aborts on must not reach a second engine here. QEMU may raise
		// the fault once more before the stop takes effect; rs_run
		// clears what it leaves in flight.
		if (m->stop.reason == RS_STOP_NONE) {
			uint64_t rip = 0;
			rs_reg_read(m, UC_X86_REG_RIP, &rip);
			ws->st.pfaults++;
			m->stop.reason = RS_STOP_FAULT;
			m->stop.pc = rip;
			m->stop.addr = ws->pend_addr;
			m->stop.access = ws->pend_access;
			m->stop.value = ws->pend_value;
			m->stop.size = ws->pend_size;
			m->stop.exact = 1;
		}
		ws->inflight = 1;
		uc_emu_stop(m->uc);
		return 1;
	}
	if (!ws->snap_ok || intno != 14)
		return 0;
	prot = protected_page(ws, cr2 & ~0xFFFULL);
	if (!prot && !ws->exact)
		return 0;
	t0 = now_s();
	if (prot)
		ws->st.faults++;
	else
		ws->st.pfaults++;
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
	fcur = rs_fast_enter(m->fast, ws->twin);
	e = uc_emu_start(ws->twin, pc, 0, 0, 0);
	rs_fast_leave(fcur);
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
	if (!prot && !ws->hit) {
		// The tables said no and libunicorn said yes: they were stale.
		ws->st.stale++;
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
	if (ws->twin != NULL) {
		uc_close(ws->twin);
		rs_fast_twin(m->fast, NULL);
	}
	if (ws->snap != NULL)
		uc_context_free(ws->snap);
	if (ws->pt != NULL)
		rs_host_unmap(ws->pt, (uint64_t)PT_PAGES * 0x1000);
	free(ws->pages);
	free(ws->runs);
	free(ws);
	m->ws = NULL;
}
