/* Fixture for the CFI oracle tests: functions whose call frame
   information covers the common shapes. Built at test time by
   oracle_test.go with gcc (ELF .eh_frame + .eh_frame_hdr) and
   x86_64-w64-mingw32-gcc (PE .debug_frame), at -O0 and -O2. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#ifndef _WIN32
#include <signal.h>
#endif

__attribute__((noinline)) int use(double *p, int n) { return (int)p[0] + n; }

/* A leaf: no frame at -O2. */
__attribute__((noinline)) int leaf(int x) { return x * 3 + 1; }

/* More than a page of locals: a stack probe (___chkstk_ms on mingw). */
__attribute__((noinline)) int big(int n) {
	char buf[9000];
	memset(buf, n, sizeof buf);
	return buf[n & 1023] + leaf(n);
}

/* alloca: a frame pointer, CFA on rbp. */
__attribute__((noinline)) int va(int n) {
	char *p = __builtin_alloca(n + 16);
	memset(p, 1, n + 16);
	return p[n] + big(n);
}

/* Stack realignment with alloca and stack arguments: GCC's DRAP pattern
   (DW_CFA_def_cfa r10; DW_CFA_expression; DW_CFA_def_cfa_expression
   breg6 -40, deref). */
__attribute__((noinline)) int drap(int a, int b, int c, int d, int e, int f, int g, int h) {
	double __attribute__((aligned(64))) x[4];
	double *y = __builtin_alloca(a * 8 + 8);
	x[0] = h;
	y[0] = g;
	return use(x, use(y, h) + a + b + c + d + e + f + g + h);
}

/* Callee-saved registers pushed and popped on several paths. */
__attribute__((noinline)) int saves(int n, int *v) {
	int a = 0, b = 1, c = 2, d = 3, e = 4;
	for (int i = 0; i < n; i++) {
		a += v[i] * b;
		b ^= leaf(a + c);
		c += d * e;
		d = va(i & 7) + e;
		if (a > 1000)
			return a + b + c + d + e;
		e += a;
	}
	return a + b + c + d + e;
}

/* Varargs. */
__attribute__((noinline)) int sum(int n, ...) {
	va_list ap;
	int s = 0;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		s += va_arg(ap, int);
	va_end(ap);
	return s;
}

#ifndef _WIN32
/* A signal handler: its caller is the kernel's signal frame, described
   by glibc's __restore_rt with the 'S' augmentation and
   DW_CFA_expression rules for every register. */
static volatile int hits;
__attribute__((noinline)) void handler(int sig) { hits += leaf(sig); }
#endif

int main(int argc, char **argv) {
	int v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	(void)argv;
	int r = saves(argc + 7, v) + drap(argc, 2, 3, 4, 5, 6, 7, 8) + sum(3, 1, 2, 3);
#ifndef _WIN32
	signal(SIGUSR1, handler);
	raise(SIGUSR1);
	r += hits;
#endif
	printf("%d\n", r);
	return 0;
}
