/* bulk: 64 MiB of patterned memory for bulk-transfer measurements (GDB's
 * dump binary memory). The pattern has no runs, so run-length encoding
 * cannot help. Fills the first N bytes (all by default), then calls
 * ready(), where a debugger stops.
 * Usage: bulk.exe [N] */
#include <stdio.h>
#include <stdlib.h>

char bulk[64 << 20];

__attribute__((noinline)) void ready(char *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], 0, 10) : sizeof bulk;
	if (n > sizeof bulk)
		n = sizeof bulk;
	for (unsigned long i = 0; i < n; i++)
		bulk[i] = (char)(i * 167u + (i >> 9));
	ready(bulk);
	printf("%d\n", bulk[n / 2]);
	return 0;
}
