/* Hostile guests for monitor bt, modules and peb (monitor/hostile_test.go).
 * x86_64-w64-mingw32-gcc -O0 -o hostile.exe hostile.c
 * argv[1] picks what the guest does to itself before it reaches the
 * breakpoint the test sets (on stop_here, nopdata_stop or smc_target):
 *   unmapped  RSP points into unmapped memory
 *   lookalike RSP points at a stack full of return-address look-alikes
 *   cyclic    a frame-pointer chain that loops (through victim's rbp frame)
 *   chain1    victim's UNWIND_INFO chains to itself
 *   chain2    victim's and victim2's UNWIND_INFOs chain to each other
 *   smc       smc_target is rewritten while a breakpoint sits on it
 *   ldr       the PEB's loader lists are made cyclic and point into nowhere
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

extern IMAGE_DOS_HEADER __ImageBase;

__declspec(noinline) int stop_here(int x) { volatile int y = x; return y + 1; }
__declspec(noinline) int smc_target(void) { return 1; }

__declspec(noinline) int victim(int x) {
	volatile char pad[64];
	pad[0] = (char)x;
	return stop_here(pad[0]) + 1;
}

__declspec(noinline) int victim2(int x) {
	volatile char pad[96];
	pad[1] = (char)x;
	return victim(pad[1]) + 2;
}

/* Code without .pdata entries: a stop point and a return-address target. */
__asm__(".text\n"
	".globl nopdata_stop\nnopdata_stop:\n\tjmp nopdata_stop\n"
	".globl nopdata_other\nnopdata_other:\n\tnop\n\tnop\n\tnop\n\tret\n");
extern char nopdata_stop[], nopdata_other[];

static unsigned long long fake[4096];

/* Never returns: the debugger stops it at nopdata_stop. */
static void jump_with(unsigned long long rsp, unsigned long long rbp) {
	__asm__ volatile("mov %0, %%rsp\n\tmov %1, %%rbp\n\tjmp nopdata_stop" : : "r"(rsp), "r"(rbp));
}

static PRUNTIME_FUNCTION entry_of(void *fn) {
	char *base = (char *)&__ImageBase;
	IMAGE_NT_HEADERS64 *nt = (IMAGE_NT_HEADERS64 *)(base + __ImageBase.e_lfanew);
	IMAGE_DATA_DIRECTORY d = nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_EXCEPTION];
	PRUNTIME_FUNCTION rf = (PRUNTIME_FUNCTION)(base + d.VirtualAddress);
	DWORD rva = (DWORD)((char *)fn - base);
	for (DWORD i = 0; i < d.Size / sizeof *rf; i++)
		if (rf[i].BeginAddress <= rva && rva < rf[i].EndAddress)
			return &rf[i];
	return NULL;
}

/* Room for rewritten UNWIND_INFOs inside the image (an RVA can name it). */
static DWORD xbuf[2][32];

/* Give fn a copy of its UNWIND_INFO (in xbuf[slot]) flagged
 * UNW_FLAG_CHAININFO, chained to parent: fn's range with the UNWIND_INFO
 * of xbuf[pslot]. The RUNTIME_FUNCTION in .pdata is made to point at the
 * copy (VirtualProtect makes .pdata writable). */
static int chain_to(void *fn, int slot, void *parent, int pslot) {
	char *base = (char *)&__ImageBase;
	PRUNTIME_FUNCTION rf = entry_of(fn), prf = entry_of(parent);
	if (!rf || !prf)
		return -1;
	unsigned char *ui = (unsigned char *)base + rf->UnwindData;
	unsigned char *copy = (unsigned char *)xbuf[slot];
	int codes = 4 + 2 * ((ui[2] + 1) & ~1);
	memcpy(copy, ui, codes);
	copy[0] = (copy[0] & 7) | (UNW_FLAG_CHAININFO << 3);
	RUNTIME_FUNCTION *chained = (RUNTIME_FUNCTION *)(copy + codes);
	chained->BeginAddress = prf->BeginAddress;
	chained->EndAddress = prf->EndAddress;
	chained->UnwindData = (DWORD)((char *)xbuf[pslot] - base);
	DWORD old;
	if (!VirtualProtect(rf, sizeof *rf, PAGE_READWRITE, &old))
		return -2;
	rf->UnwindData = (DWORD)((char *)xbuf[slot] - base);
	return 0;
}

int main(int argc, char **argv) {
	const char *what = argc > 1 ? argv[1] : "";
	printf("hostile: %s\n", what);
	fflush(stdout);
	if (!strcmp(what, "unmapped"))
		jump_with(0xdead0000000ull, 0xdead0000100ull);
	if (!strcmp(what, "lookalike")) {
		/* Return addresses into every function, the middle of each. */
		void *fns[] = {stop_here, smc_target, victim, victim2, main, nopdata_other};
		for (int i = 0; i < 4096; i++)
			fake[i] = (unsigned long long)fns[i % 6] + (i % 5) * 3;
		jump_with((unsigned long long)&fake[8], (unsigned long long)&fake[64]);
	}
	if (!strcmp(what, "cyclic")) {
		/* victim keeps its frame in rbp (push rbp; mov rbp, rsp: the
		 * unwinder sets RSP = rbp, then pops rbp and the return address).
		 * From the leaf rule at nopdata_stop into victim's body, each
		 * unwind of victim reads rbp from [rbp]: the same frame again. */
		unsigned long long body = (unsigned long long)victim + 0x1f;
		fake[0] = body;
		fake[16] = (unsigned long long)&fake[16]; /* saved rbp: itself */
		fake[17] = body;
		jump_with((unsigned long long)&fake[0], (unsigned long long)&fake[16]);
	}
	if (!strcmp(what, "chain1"))
		printf("chain %d\n", chain_to(victim, 0, victim, 0));
	if (!strcmp(what, "chain2"))
		printf("chain %d %d\n", chain_to(victim, 0, victim2, 1), chain_to(victim2, 1, victim, 0));
	if (!strcmp(what, "chain1") || !strcmp(what, "chain2")) {
		fflush(stdout);
		return victim2(3);
	}
	if (!strcmp(what, "smc")) {
		int (*volatile fp)(void) = smc_target;
		DWORD old;
		if (!VirtualProtect((void *)smc_target, 16, PAGE_EXECUTE_READWRITE, &old))
			return 2;
		printf("before %d\n", fp());
		static const unsigned char code[] = {0xb8, 42, 0, 0, 0, 0xc3}; /* mov eax, 42; ret */
		memcpy((void *)smc_target, code, sizeof code);
		printf("after %d\n", fp());
		return 0;
	}
	if (!strcmp(what, "ldr")) {
		unsigned char *peb = (unsigned char *)__readgsqword(0x60);
		unsigned char *ldr = *(unsigned char **)(peb + 0x18);
		unsigned char *first = *(unsigned char **)(ldr + 0x10); /* InLoadOrderModuleList.Flink */
		unsigned char *second = *(unsigned char **)first;
		*(void **)first = first;                      /* load order: loops on itself */
		*(void **)(first + 8) = first;
		*(void **)(ldr + 0x20) = second + 0x10;        /* memory order: a 2-cycle */
		*(void **)(second + 0x10) = first + 0x10;
		*(void **)(first + 0x10) = second + 0x10;
		*(void **)(ldr + 0x30) = (void *)0xdead0000000ull; /* init order: nowhere */
		*(unsigned short *)(first + 0x58) = 0xfffe;   /* BaseDllName: huge, unmapped */
		*(void **)(first + 0x60) = (void *)0xdead0000000ull;
		*(void **)(peb + 0x20) = (void *)0xdead0001000ull; /* ProcessParameters */
		return stop_here(5);
	}
	return stop_here(1);
}
