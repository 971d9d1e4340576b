/*
 * walk.c: a Windows x64 test program for the unwinder.
 *
 * main calls through C functions of different prolog shapes (many pushes,
 * an alloca frame pointer, nonvolatile XMM saves) into hand-written
 * assembly (rare.S: chained info, SAVE_NONVOL_FAR, SAVE_XMM128_FAR, 32-bit
 * ALLOC_LARGE, an R13 frame pointer, a machine frame), which calls
 * capture(). capture() records its context, copies the stack to the file
 * named by argv[1] and walks the stack with RtlLookupFunctionEntry and
 * RtlVirtualUnwind, printing each frame: the reference our unwinder must
 * reproduce from the same bytes.
 *
 * With a second file argument, main then single-steps the same call chain
 * again (capture() returns at once) with the trap flag and a vectored
 * handler; at each instruction inside a function with unwind data it
 * writes a record to argv[2]: the context, RtlVirtualUnwind's result for
 * that context, and 8 KiB of stack from RSP (struct trace_rec).
 *
 * Output lines (hex numbers):
 *   MOD base size path
 *   STACK start length
 *   REF rip rsp rbx rbp rsi rdi r12 r13 r14 r15 xmm6lo xmm15lo
 *   END
 *   TRACED (after a trace)
 *
 * Built by the Go tests, e.g.:
 *   x86_64-w64-mingw32-gcc -O2 -o walk.exe walk.c rare.o -Wl,--stack,0x1000000
 * with rare.o from: clang --target=x86_64-w64-mingw32 -c rare.S
 * (without rare.o, -DNO_RARE). Run: wine64 walk.exe stack.bin [trace.bin]
 */
#define PSAPI_VERSION 2
#include <windows.h>
#include <psapi.h>
#include <stdio.h>
#include <string.h>

static const char *dump_path;
static volatile int tracing;
static FILE *trace_file;
static ULONG64 exe_base, exe_end;

/* One traced instruction. */
struct trace_rec {
    ULONG64 gpr[16], rip, xmm[16][2];     /* the context at the instruction */
    ULONG64 ogpr[16], orip, oxmm[16][2];  /* after RtlVirtualUnwind */
    ULONG64 found;                        /* 1 if a function entry was found */
    unsigned char stack[8192];            /* from gpr[4] (RSP) */
};
static struct trace_rec rec;
static unsigned char stack_copy[0x1800000];

static void hex_line(const char *tag, const CONTEXT *c)
{
    printf("%s %llx %llx %llx %llx %llx %llx %llx %llx %llx %llx %llx %llx\n", tag,
           c->Rip, c->Rsp, c->Rbx, c->Rbp, c->Rsi, c->Rdi, c->R12, c->R13, c->R14, c->R15,
           c->Xmm6.Low, c->Xmm15.Low);
}

static void copy_context(const CONTEXT *c, ULONG64 *gpr, ULONG64 *rip, ULONG64 (*xmm)[2])
{
    memcpy(gpr, &c->Rax, 16 * sizeof(ULONG64));
    *rip = c->Rip;
    const M128A *x = &c->Xmm0;
    for (int i = 0; i < 16; i++) {
        xmm[i][0] = x[i].Low;
        xmm[i][1] = x[i].High;
    }
}

static LONG CALLBACK single_step(EXCEPTION_POINTERS *ep)
{
    if (ep->ExceptionRecord->ExceptionCode != EXCEPTION_SINGLE_STEP)
        return EXCEPTION_CONTINUE_SEARCH;
    CONTEXT *c = ep->ContextRecord;
    if (!tracing)
        return EXCEPTION_CONTINUE_EXECUTION;
    c->EFlags |= 0x100;
    if (c->Rip < exe_base || c->Rip >= exe_end)
        return EXCEPTION_CONTINUE_EXECUTION;
    DWORD64 base = 0;
    PRUNTIME_FUNCTION fn = RtlLookupFunctionEntry(c->Rip, &base, NULL);
    if (!fn)
        return EXCEPTION_CONTINUE_EXECUTION; /* e.g. ___chkstk_ms: no unwind data */
    copy_context(c, rec.gpr, &rec.rip, rec.xmm);
    memcpy(rec.stack, (void *)c->Rsp, sizeof(rec.stack));
    CONTEXT u = *c;
    PVOID hd;
    DWORD64 est;
    RtlVirtualUnwind(UNW_FLAG_NHANDLER, base, u.Rip, fn, &u, &hd, &est, NULL);
    copy_context(&u, rec.ogpr, &rec.orip, rec.oxmm);
    rec.found = 1;
    fwrite(&rec, sizeof(rec), 1, trace_file);
    return EXCEPTION_CONTINUE_EXECUTION;
}

__attribute__((noinline)) void capture(void)
{
    if (tracing)
        return;
    CONTEXT ctx;
    RtlCaptureContext(&ctx);

    /* Copy the live stack first: everything above ctx.Rsp belongs to this
     * frame and its callers. */
    NT_TIB *tib = (NT_TIB *)NtCurrentTeb();
    ULONG64 top = (ULONG64)tib->StackBase;
    ULONG64 len = top - ctx.Rsp;
    if (len > sizeof(stack_copy))
        len = sizeof(stack_copy);
    memcpy(stack_copy, (void *)ctx.Rsp, len);
    FILE *f = fopen(dump_path, "wb");
    if (!f || fwrite(stack_copy, 1, len, f) != len) {
        printf("ERROR writing %s\n", dump_path);
        return;
    }
    fclose(f);

    HMODULE mods[256];
    DWORD needed = 0;
    if (EnumProcessModules(GetCurrentProcess(), mods, sizeof(mods), &needed)) {
        for (DWORD i = 0; i < needed / sizeof(HMODULE) && i < 256; i++) {
            MODULEINFO mi;
            char name[MAX_PATH];
            if (!GetModuleInformation(GetCurrentProcess(), mods[i], &mi, sizeof(mi)))
                continue;
            if (!GetModuleFileNameA(mods[i], name, sizeof(name)))
                strcpy(name, "?");
            printf("MOD %llx %lx %s\n", (ULONG64)mi.lpBaseOfDll, mi.SizeOfImage, name);
        }
    }
    printf("STACK %llx %llx\n", ctx.Rsp, len);

    for (int i = 0; i < 64 && ctx.Rip; i++) {
        hex_line("REF", &ctx);
        DWORD64 base = 0;
        PRUNTIME_FUNCTION fn = RtlLookupFunctionEntry(ctx.Rip, &base, NULL);
        if (fn) {
            PVOID hd;
            DWORD64 est;
            RtlVirtualUnwind(UNW_FLAG_NHANDLER, base, ctx.Rip, fn, &ctx, &hd, &est, NULL);
        } else {
            ctx.Rip = *(DWORD64 *)ctx.Rsp;
            ctx.Rsp += 8;
        }
        /* Stop where the PE modules end (Wine's unix side follows). */
        HMODULE m;
        if (ctx.Rip && !GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                           GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                                           (LPCSTR)ctx.Rip, &m)) {
            hex_line("REF", &ctx);
            break;
        }
    }
    printf("END\n");
    fflush(stdout);
}

#ifdef NO_RARE
__attribute__((noinline)) void rare_entry(void) { capture(); }
#else
void rare_entry(void);
#endif

volatile int sink;

__attribute__((noinline)) double c_level3(double x)
{
    /* a and b live across the call: kept in xmm6/xmm7, saved by the prolog. */
    double a = x * 1.5, b = x * 2.5;
    rare_entry();
    return a * b + x;
}

__attribute__((noinline)) int c_level2(int n)
{
    /* alloca forces a frame pointer (UWOP_SET_FPREG). */
    volatile char *p = __builtin_alloca(n);
    p[0] = 1;
    p[n - 1] = 2;
    double r = c_level3(n);
    return (int)r + p[0];
}

__attribute__((noinline)) int c_level1(int a, int b, int c, int d)
{
    /* Many values live across the call: rbx, rsi, rdi, r12-r15 pushed. */
    int v1 = a * 3, v2 = b * 5, v3 = c * 7, v4 = d * 11, v5 = a + b, v6 = c + d, v7 = a ^ d;
    sink = v1;
    int r = c_level2(v1 + 64);
    return r + v1 + v2 + v3 + v4 + v5 + v6 + v7;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("usage: walk stack.bin [trace.bin]\n");
        return 2;
    }
    dump_path = argv[1];
    sink = c_level1(argc, 2, 3, 4);
    if (argc > 2) {
        MODULEINFO mi;
        GetModuleInformation(GetCurrentProcess(), GetModuleHandleA(NULL), &mi, sizeof(mi));
        exe_base = (ULONG64)mi.lpBaseOfDll;
        exe_end = exe_base + mi.SizeOfImage;
        trace_file = fopen(argv[2], "wb");
        if (!trace_file)
            return 1;
        AddVectoredExceptionHandler(1, single_step);
        tracing = 1;
        __asm__ volatile("pushfq; orq $0x100, (%%rsp); popfq" ::: "memory", "cc");
        sink = c_level1(argc, 2, 3, 4);
        tracing = 0;
        fclose(trace_file);
        printf("TRACED\n");
    }
    return 0;
}
