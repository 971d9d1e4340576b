// Fast guest stores on libunicorn 2.0.1 (see "Stores" in doc.go).
//
// libunicorn 2.0.1 marks every writable TLB entry "not dirty" (its
// cpu_physical_memory_is_clean always answers true) and never clears the
// mark, so every guest store leaves the translated fast path for
// store_helper and notdirty_write, which allocates a page collection (a
// GLib tree) to look for translated code to drop. Upstream fixed it after
// 2.0.1 (notdirty_write: fix store-related performance problems).
//
// libunicorn calls its own tlb_set_page_with_attrs, tb_gen_code,
// tlb_protect_code and tlb_unprotect_code through its PLT, so the
// definitions below, exported by the executable, take their place; each
// calls libunicorn's own (dlsym RTLD_NEXT) and adds what 2.0.1 lacks:
//   - a TLB fill of a writable page of guest memory we mapped
//     (rs_fast_map) clears the mark (tlb_set_dirty) unless the page holds
//     translated code;
//   - a page that gets its first translated block (tlb_protect_code,
//     called only from tb_gen_code) is recorded, and every TLB entry
//     mapping it is marked again (tlb_reset_dirty), so a store to it still
//     drops the code it overwrites;
//   - a page whose blocks are all gone (tlb_unprotect_code) is forgotten.
// Pages are recorded per engine (the machine and its twin translate
// separately). A tb_flush forgets blocks without tlb_unprotect_code: the
// pages stay recorded, which only keeps their stores slow. Anything
// unexpected (another libunicorn, a missing symbol, RSPSTUB_SLOW_STORES
// set) leaves libunicorn's behaviour untouched.

#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"

typedef struct CPUState CPUState;
typedef struct TranslationBlock TranslationBlock;
struct uc_struct;

#define FS_PAGE_WRITE 0x0002 // QEMU's PAGE_WRITE
#define FS_PAGE_MASK (~(uint64_t)0xFFF)

// A map of uint64 keys (never 0 or FS_TOMB) to values (open addressing).
#define FS_TOMB (~(uint64_t)0)
typedef struct fs_map {
	uint64_t *k, *v;
	uint32_t cap, used, n;
} fs_map;

// One engine's pages with translated code: by ram offset (as libunicorn
// names them to tlb_protect_code and tlb_unprotect_code; ram+1, never 0)
// to host page, and host pages with a count (fills look them up).
typedef struct fs_set {
	uc_engine *uc;
	struct rs_fast *owner;
	fs_map ram, host;
} fs_set;

typedef struct fs_region {
	uint64_t start, end; // guest [start, end)
	uintptr_t host;
} fs_region;

struct rs_fast {
	fs_region *r;
	int n, cap;
	fs_set code[2];   // the machine's engine, the twin's
	rs_fast_stats st; // st.broken: a code page could not be recorded, no more clearing
	struct rs_fast *next; // registry
};

static void (*real_set_page)(CPUState *, uint64_t, uint64_t, uint32_t, int, int, uint64_t);
static TranslationBlock *(*real_gen_code)(CPUState *, uint64_t, uint64_t, uint32_t, int);
static void (*real_protect)(struct uc_struct *, uint64_t);
static void (*real_unprotect)(struct uc_struct *, uint64_t);
static void (*set_dirty)(CPUState *, uint64_t);
static void (*reset_dirty)(CPUState *, uint64_t, uint64_t);
static void *(*map_ram_ptr)(struct uc_struct *, void *, uint64_t);
static void (*real_qht_init)(void *, void *, size_t, unsigned int);
static int fs_on;
static int fs_v2_0; // libunicorn 2.0.x: qht_init's size hint is changed
static pthread_once_t fs_once = PTHREAD_ONCE_INIT;

static pthread_mutex_t fs_mu = PTHREAD_MUTEX_INITIALIZER;
static rs_fast *fs_all; // every machine's state, for lookups by engine

// The engine running on this thread and its state (rs_fast_enter), and
// the CPU whose block tb_gen_code is translating.
static __thread rs_fast *fs_cur;
static __thread fs_set *fs_cur_set;
static __thread CPUState *fs_gen_cpu;

static void fs_init(void)
{
	unsigned major = 0, minor = 0;
	real_set_page = dlsym(RTLD_NEXT, "tlb_set_page_with_attrs_x86_64");
	real_gen_code = dlsym(RTLD_NEXT, "tb_gen_code_x86_64");
	real_protect = dlsym(RTLD_NEXT, "tlb_protect_code_x86_64");
	real_unprotect = dlsym(RTLD_NEXT, "tlb_unprotect_code_x86_64");
	set_dirty = dlsym(RTLD_NEXT, "tlb_set_dirty_x86_64");
	reset_dirty = dlsym(RTLD_NEXT, "tlb_reset_dirty_x86_64");
	map_ram_ptr = dlsym(RTLD_NEXT, "qemu_map_ram_ptr_x86_64");
	real_qht_init = dlsym(RTLD_NEXT, "qht_init");
	uc_version(&major, &minor);
	fs_v2_0 = major == 2 && minor == 0;
	fs_on = real_set_page && real_gen_code && real_protect && real_unprotect && set_dirty &&
		reset_dirty && map_ram_ptr && major == 2 && minor == 0 && getenv("RSPSTUB_SLOW_STORES") == NULL;
}

static void fs_ready(void)
{
	pthread_once(&fs_once, fs_init);
}

int rs_fast_stores_on(void)
{
	fs_ready();
	return fs_on;
}

static uint32_t fs_slot(uint64_t k, uint32_t cap)
{
	k ^= k >> 29;
	k *= 0x9E3779B97F4A7C15ULL;
	return (uint32_t)(k >> 32) & (cap - 1);
}

// fs_at returns k's slot, or -1.
static int64_t fs_at(const fs_map *m, uint64_t k)
{
	uint32_t i, n;
	if (m->cap == 0)
		return -1;
	for (i = fs_slot(k, m->cap), n = 0; n < m->cap; i = (i + 1) & (m->cap - 1), n++) {
		if (m->k[i] == k)
			return i;
		if (m->k[i] == 0)
			return -1;
	}
	return -1;
}

// fs_put sets k to v; returns 0 when out of memory.
static int fs_put(fs_map *m, uint64_t k, uint64_t v)
{
	int64_t at = fs_at(m, k);
	uint32_t i, j;
	if (at >= 0) {
		m->v[at] = v;
		return 1;
	}
	if ((m->used + 1) * 2 > m->cap) {
		uint32_t cap = m->cap == 0 ? 256 : m->n * 4 < m->cap ? m->cap : m->cap * 2;
		uint64_t *ok = m->k, *ov = m->v;
		uint64_t *nk = calloc(cap, sizeof *nk), *nv = calloc(cap, sizeof *nv);
		if (nk == NULL || nv == NULL) {
			free(nk);
			free(nv);
			return 0;
		}
		for (j = 0; j < m->cap; j++)
			if (ok[j] != 0 && ok[j] != FS_TOMB) {
				for (i = fs_slot(ok[j], cap); nk[i] != 0; i = (i + 1) & (cap - 1))
					;
				nk[i] = ok[j];
				nv[i] = ov[j];
			}
		m->k = nk;
		m->v = nv;
		m->cap = cap;
		m->used = m->n;
		free(ok);
		free(ov);
	}
	for (i = fs_slot(k, m->cap); m->k[i] != 0 && m->k[i] != FS_TOMB; i = (i + 1) & (m->cap - 1))
		;
	if (m->k[i] == 0)
		m->used++;
	m->k[i] = k;
	m->v[i] = v;
	m->n++;
	return 1;
}

static void fs_drop(fs_map *m, int64_t at)
{
	m->k[at] = FS_TOMB;
	m->n--;
}

static void fs_free(fs_map *m)
{
	free(m->k);
	free(m->v);
}

// fs_has_host reports whether host page h holds translated code of s's engine.
static int fs_has_host(const fs_set *s, uint64_t h)
{
	return fs_at(&s->host, h) >= 0;
}

// fs_record notes ram page ram, at host page h, as holding code.
static int fs_record(fs_set *s, uint64_t ram, uint64_t h)
{
	int64_t at;
	if (fs_at(&s->ram, ram + 1) >= 0)
		return 1;
	at = fs_at(&s->host, h);
	if (!fs_put(&s->host, h, at >= 0 ? s->host.v[at] + 1 : 1))
		return 0;
	if (!fs_put(&s->ram, ram + 1, h)) {
		at = fs_at(&s->host, h);
		if (--s->host.v[at] == 0)
			fs_drop(&s->host, at);
		return 0;
	}
	return 1;
}

// fs_forget drops ram page ram, if recorded.
static void fs_forget(fs_set *s, uint64_t ram)
{
	int64_t at = fs_at(&s->ram, ram + 1), hat;
	if (at < 0)
		return;
	hat = fs_at(&s->host, s->ram.v[at]);
	fs_drop(&s->ram, at);
	if (hat >= 0 && --s->host.v[hat] == 0)
		fs_drop(&s->host, hat);
}

// fs_find returns the set recording engine uc's code pages, or NULL.
static fs_set *fs_find(struct uc_struct *uc)
{
	rs_fast *f;
	fs_set *s = NULL;
	if (fs_cur != NULL) {
		if (fs_cur->code[0].uc == (uc_engine *)uc)
			return &fs_cur->code[0];
		if (fs_cur->code[1].uc == (uc_engine *)uc)
			return &fs_cur->code[1];
	}
	pthread_mutex_lock(&fs_mu);
	for (f = fs_all; f != NULL && s == NULL; f = f->next)
		if (f->code[0].uc == (uc_engine *)uc)
			s = &f->code[0];
		else if (f->code[1].uc == (uc_engine *)uc)
			s = &f->code[1];
	pthread_mutex_unlock(&fs_mu);
	return s;
}

void tlb_set_page_with_attrs_x86_64(CPUState *cpu, uint64_t vaddr, uint64_t paddr, uint32_t attrs,
				    int prot, int mmu_idx, uint64_t size)
{
	rs_fast *f = fs_cur;
	fs_set *s = fs_cur_set;
	uintptr_t host = 0;
	int lo, hi;
	fs_ready();
	real_set_page(cpu, vaddr, paddr, attrs, prot, mmu_idx, size);
	if (!fs_on || f == NULL || s == NULL || f->st.broken || !(prot & FS_PAGE_WRITE))
		return;
	paddr &= FS_PAGE_MASK;
	for (lo = 0, hi = f->n; lo < hi;) {
		int mid = (lo + hi) / 2;
		if (f->r[mid].end <= paddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < f->n && f->r[lo].start <= paddr)
		host = f->r[lo].host + (uintptr_t)(paddr - f->r[lo].start);
	if (host == 0 || fs_has_host(s, host))
		return;
	set_dirty(cpu, vaddr & FS_PAGE_MASK);
	f->st.cleared++;
}

TranslationBlock *tb_gen_code_x86_64(CPUState *cpu, uint64_t pc, uint64_t cs_base, uint32_t flags, int cflags)
{
	CPUState *prev = fs_gen_cpu;
	TranslationBlock *tb;
	fs_ready();
	fs_gen_cpu = cpu;
	tb = real_gen_code(cpu, pc, cs_base, flags, cflags);
	fs_gen_cpu = prev;
	return tb;
}

void tlb_protect_code_x86_64(struct uc_struct *uc, uint64_t ram_addr)
{
	fs_set *s;
	uintptr_t host;
	fs_ready();
	real_protect(uc, ram_addr);
	if (!fs_on)
		return;
	s = fs_find(uc);
	if (s == NULL)
		return; // not a machine's engine: nothing of it was cleared
	// A valid offset here: tb_gen_code took it from the code's TLB entry.
	ram_addr &= FS_PAGE_MASK;
	host = (uintptr_t)map_ram_ptr(uc, NULL, ram_addr);
	if (host == 0 || fs_gen_cpu == NULL || !fs_record(s, ram_addr, host)) {
		// Cannot record it: stop clearing for this machine.
		s->owner->st.broken = 1;
		if (fs_gen_cpu != NULL && host != 0)
			reset_dirty(fs_gen_cpu, host, 0x1000);
		return;
	}
	reset_dirty(fs_gen_cpu, host, 0x1000);
	s->owner->st.code_pages++;
}

void tlb_unprotect_code_x86_64(struct uc_struct *uc, uint64_t ram_addr)
{
	fs_set *s;
	fs_ready();
	real_unprotect(uc, ram_addr);
	if (!fs_on)
		return;
	// Not always a ram offset (libunicorn's uc_ctl_remove_cache passes
	// guest addresses down): only a recorded one means anything.
	s = fs_find(uc);
	if (s != NULL)
		fs_forget(s, ram_addr & FS_PAGE_MASK);
}

// The translation-block hash table. libunicorn 2.0.1 sizes it for 32768
// blocks at every uc_open (8192 buckets of 64 bytes, written at once: 128
// fresh pages, two engines a machine; a page fault costs up to about 25
// microseconds on the development machine, task-clock over page faults in
// perf stat). It resizes itself as it fills
// (QHT_MODE_AUTO_RESIZE), so it starts at 1024 blocks here; a tb_flush
// sets it back to libunicorn's size.
#define FS_QHT_LIBUNICORN (1 << 15)
#define FS_QHT_START (1 << 10)

void qht_init(void *ht, void *cmp, size_t n_elems, unsigned int mode)
{
	fs_ready();
	if (fs_v2_0 && n_elems == FS_QHT_LIBUNICORN)
		n_elems = FS_QHT_START;
	real_qht_init(ht, cmp, n_elems, mode);
}

rs_fast *rs_fast_new(uc_engine *uc)
{
	rs_fast *f;
	fs_ready();
	if (!fs_on)
		return NULL;
	f = calloc(1, sizeof *f);
	if (f == NULL)
		return NULL;
	f->code[0].uc = uc;
	f->code[0].owner = f;
	f->code[1].owner = f;
	pthread_mutex_lock(&fs_mu);
	f->next = fs_all;
	fs_all = f;
	pthread_mutex_unlock(&fs_mu);
	return f;
}

void rs_fast_twin(rs_fast *f, uc_engine *twin)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&fs_mu);
	f->code[1].uc = twin;
	fs_free(&f->code[1].ram);
	fs_free(&f->code[1].host);
	memset(&f->code[1].ram, 0, sizeof f->code[1].ram);
	memset(&f->code[1].host, 0, sizeof f->code[1].host);
	pthread_mutex_unlock(&fs_mu);
}

void rs_fast_free(rs_fast *f)
{
	rs_fast **p;
	if (f == NULL)
		return;
	pthread_mutex_lock(&fs_mu);
	for (p = &fs_all; *p != NULL; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	pthread_mutex_unlock(&fs_mu);
	for (int i = 0; i < 2; i++) {
		fs_free(&f->code[i].ram);
		fs_free(&f->code[i].host);
	}
	free(f->r);
	free(f);
}

// rs_fast_enter makes uc, an engine of f, the one running on this thread;
// it returns the previous state for rs_fast_leave.
rs_fast_cur rs_fast_enter(rs_fast *f, uc_engine *uc)
{
	rs_fast_cur prev = {fs_cur, (void *)fs_cur_set};
	fs_cur = f;
	fs_cur_set = NULL;
	if (f != NULL)
		fs_cur_set = f->code[0].uc == uc ? &f->code[0] : f->code[1].uc == uc ? &f->code[1] : NULL;
	return prev;
}

void rs_fast_leave(rs_fast_cur prev)
{
	fs_cur = prev.f;
	fs_cur_set = (fs_set *)prev.s;
}

// rs_fast_map records guest [addr, addr+size) backed by host memory.
int rs_fast_map(rs_fast *f, uint64_t addr, uint64_t size, void *host)
{
	int i;
	if (f == NULL)
		return 0;
	if (f->n == f->cap) {
		int cap = f->cap ? f->cap * 2 : 16;
		fs_region *r = realloc(f->r, (size_t)cap * sizeof *r);
		if (r == NULL) {
			f->st.broken = 1;
			return -1;
		}
		f->r = r;
		f->cap = cap;
	}
	for (i = f->n; i > 0 && f->r[i - 1].start > addr; i--)
		f->r[i] = f->r[i - 1];
	f->r[i].start = addr;
	f->r[i].end = addr + size;
	f->r[i].host = (uintptr_t)host;
	f->n++;
	return 0;
}

// rs_fast_unmap forgets guest [addr, end), splitting regions it cuts.
void rs_fast_unmap(rs_fast *f, uint64_t addr, uint64_t end)
{
	int i, j;
	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++) {
		fs_region *r = &f->r[i];
		if (r->end <= addr || r->start >= end)
			continue;
		if (r->start < addr && r->end > end) {
			// A hole in the middle: keep both sides.
			fs_region hi = {end, r->end, r->host + (uintptr_t)(end - r->start)};
			r->end = addr;
			if (rs_fast_map(f, hi.start, hi.end - hi.start, (void *)hi.host) != 0)
				return;
			continue;
		}
		if (r->start < addr) {
			r->end = addr;
			continue;
		}
		if (r->end > end) {
			r->host += (uintptr_t)(end - r->start);
			r->start = end;
			continue;
		}
		for (j = i; j + 1 < f->n; j++)
			f->r[j] = f->r[j + 1];
		f->n--;
		i--;
	}
}

void rs_fast_read_stats(rs_fast *f, rs_fast_stats *out)
{
	memset(out, 0, sizeof *out);
	if (f == NULL)
		return;
	*out = f->st;
	out->tracked = (int)(f->code[0].ram.n + f->code[1].ram.n);
}
