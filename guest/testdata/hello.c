/* Built at test time: x86_64-w64-mingw32-gcc -O0 -o hello.exe hello.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
static void bye(void) { printf("atexit handler ran\n"); }

int main(int argc, char **argv) {
	int v[6] = {5, 3, 9, 1, 7, 2};
	char buf[64];
	printf("hello, world\n");
	printf("argc=%d argv[1]=%s\n", argc, argc > 1 ? argv[1] : "(none)");
	printf("[%5d|%-5d|%05d|%x|%X|%#x|%lld|%llu|%zu|%c|%%]\n", 42, 42, 42, 255, 255, 255, -1234567890123LL, 18446744073709551615ULL, sizeof(long long), 'Z');
	printf("[%.3f|%8.2f|%e|%g|%g|%.1s]\n", 3.14159, -2.5, 12345.678, 0.0001, 100000000.0, "xyz");
	qsort(v, 6, sizeof v[0], cmp);
	printf("sorted: %d %d %d %d %d %d\n", v[0], v[1], v[2], v[3], v[4], v[5]);
	char *p = malloc(100);
	strcpy(p, "heap string");
	snprintf(buf, sizeof buf, "%s/%d", p, (int)strlen(p));
	puts(buf);
	free(p);
	fprintf(stderr, "to stderr\n");
	atexit(bye);
	return 7;
}
