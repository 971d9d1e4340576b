/* Functions whose unwind data check-unwind compares: frame pointers,
 * large frames (___chkstk_ms), many callee-saved registers, XMM saves,
 * dynamic allocation, tail calls, several epilogs.
 * Built by check_test.go with x86_64-w64-mingw32-gcc at -O0 and -O2,
 * with and without -g, with and without -fno-omit-frame-pointer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

volatile int sink;

__attribute__((noinline)) int leafish(int x) { return x * 3 + 1; }

__attribute__((noinline)) int ext(int x) {
	sink = x;
	return x + sink;
}

/* A frame pointer because of a variable-length array. */
__attribute__((noinline)) int vla(int n) {
	char buf[n + 1];
	memset(buf, n, n + 1);
	return ext(buf[n / 2]) + n;
}

/* alloca: a frame pointer and a dynamic allocation. */
__attribute__((noinline)) int with_alloca(int n) {
	char *p = alloca(n + 16);
	memset(p, 1, n + 16);
	return ext(p[n]);
}

/* More than a page of locals: the prolog calls ___chkstk_ms. */
__attribute__((noinline)) int big_frame(int n) {
	volatile char big[20000];
	for (int i = 0; i < (int)sizeof big; i += 512)
		big[i] = (char)(i + n);
	return ext(big[n & 0x3fff]);
}

/* A larger frame still, with a frame pointer. */
__attribute__((noinline)) int big_frame_vla(int n) {
	volatile char big[70000];
	char v[n + 1];
	v[0] = 1;
	big[n] = v[0];
	return ext(big[n] + v[0]);
}

/* Many values live across calls: every callee-saved register. */
__attribute__((noinline)) long many_regs(long a, long b, long c, long d) {
	long e = ext((int)a), f = ext((int)b), g = ext((int)c), h = ext((int)d);
	long i = ext((int)(e + f)), j = ext((int)(g + h)), k = ext((int)(i ^ j));
	long l = ext((int)(a * k)), m = ext((int)(b * l)), n = ext((int)(c * m));
	return a + b + c + d + e + f + g + h + i + j + k + l + m + n;
}

/* Doubles live across calls: xmm6-xmm15 saved. */
__attribute__((noinline)) double many_xmm(double a, double b, double c) {
	double d = a * b, e = b * c, f = a * c, g = d + e, h = e + f, i = d * f;
	double j = g * h, k = h * i, l = i * j, m = j * k;
	ext((int)a);
	double r = a + b + c + d + e + f + g + h + i + j + k + l + m;
	ext((int)r);
	return r + a * b * c * d * e * f * g * h * i * j * k * l * m;
}

/* Several returns and a tail call. */
__attribute__((noinline)) int epilogs(int x) {
	if (x < 0)
		return leafish(-x);
	if (x == 0)
		return 7;
	int y = ext(x);
	if (y > 100)
		return y - 1;
	return ext(y * 2) + leafish(y);
}

/* A switch that becomes a jump table. */
__attribute__((noinline)) int table(int x) {
	int r;
	switch (x) {
	case 0: r = ext(1); break;
	case 1: r = ext(3) + 2; break;
	case 2: r = ext(5) * 3; break;
	case 3: r = leafish(7); break;
	case 4: r = ext(9) - 4; break;
	case 5: r = ext(11) ^ 5; break;
	case 6: r = ext(13) | 6; break;
	default: r = 0;
	}
	return r + ext(r);
}

/* Rarely taken code GCC may split into a .cold partition. */
__attribute__((noinline)) int cold_path(int x) {
	int r = ext(x);
	if (__builtin_expect(r == 12345, 0)) {
		fprintf(stderr, "unlikely %d\n", r);
		abort();
	}
	return r + ext(r + 1);
}

int main(int argc, char **argv) {
	int n = argc + 10;
	long s = vla(n) + with_alloca(n) + big_frame(n) + big_frame_vla(n);
	s += many_regs(n, n + 1, n + 2, n + 3);
	s += (long)many_xmm(n, n + 0.5, n + 0.25);
	s += epilogs(n) + table(argc) + cold_path(n);
	printf("%ld\n", s);
	(void)argv;
	return 0;
}
