/*
 * msvc.c: functions of several prolog shapes for clang's MSVC target,
 * which lays out prologs and unwind codes its own way (XMM saves with
 * SAVE_XMM128, __chkstk-sized frames, push sequences). No C runtime, so it
 * is decoded and compared with llvm-readobj only, not run.
 *
 * Build: clang --target=x86_64-pc-windows-msvc -fuse-ld=lld -O2 -nostdlib \
 *            -Wl,-entry:start -Wl,-subsystem:console -o msvc.exe msvc.c
 */
int _fltused;
void __chkstk(void) {}
volatile int sink;
__declspec(noinline) double leafy(double a, double b) { return a * b + 1; }
__declspec(noinline) int big(int n) {
    volatile char buf[8192];
    buf[n] = 1;
    return buf[n / 2];
}
__declspec(noinline) double fp(int n) {
    double a = n * 1.5, b = n * 2.5, c = n * 3.5;
    sink = big(n);
    return a * b * c + leafy(a, b);
}
__declspec(noinline) int dyn(int n) {
    char *p = __builtin_alloca(n);
    p[0] = 1;
    sink = (int)fp(n);
    return p[0];
}
__declspec(noinline) int many(int a, int b, int c, int d) {
    int v1 = a * 3, v2 = b * 5, v3 = c * 7, v4 = d * 11, v5 = a + b, v6 = c + d, v7 = a ^ d;
    sink = dyn(v1 + 64);
    return v1 + v2 + v3 + v4 + v5 + v6 + v7;
}
int start(void) { return many(1, 2, 3, 4); }
