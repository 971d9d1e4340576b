/* main -> a -> b -> c -> d, each printing a line; qsort with a comparator
   that prints. Built at test time with x86_64-w64-mingw32-gcc -O0. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void d(int x) { puts("in d"); }
__attribute__((noinline)) void c(int x) { puts("in c"); d(x + 1); }
__attribute__((noinline)) void b(int x) { puts("in b"); c(x + 1); }
__attribute__((noinline)) void a(int x) { puts("in a"); b(x + 1); }

static int cmp(const void *p, const void *q) {
	putchar('.');
	return *(const int *)p - *(const int *)q;
}

int main(void) {
	int v[3] = {3, 1, 2};
	a(1);
	qsort(v, 3, sizeof v[0], cmp);
	printf("\n%d %d %d\n", v[0], v[1], v[2]);
	return 0;
}
