/* loop: about N iterations of a small body, for speed measurements.
 * hit() is called `calls` times: a breakpoint on it measures the
 * breakpoint round trip. The same source builds as a native Linux
 * program for comparisons with gdbserver.
 * Usage: loop.exe ITERATIONS CALLS */
#include <stdio.h>
#include <stdlib.h>

volatile unsigned long long sink;

/* quiet: never written; the target of a watchpoint that is never hit. */
volatile unsigned long long quiet;

/* big: 4 MiB that a debugger reads in bulk-read benchmarks, filled with
 * a pattern without runs so that run-length encoding cannot help. */
char big[4 << 20];

__attribute__((noinline)) void hit(unsigned long long i)
{
	sink += i;
}

int main(int argc, char **argv)
{
	unsigned long long n = argc > 1 ? strtoull(argv[1], 0, 10) : 100000000ULL;
	unsigned long long calls = argc > 2 ? strtoull(argv[2], 0, 10) : 0;
	unsigned long long every = calls ? n / calls : 0;
	unsigned long long x = 1;
	for (unsigned i = 0; i < sizeof big; i++)
		big[i] = (char)(i * 167u + (i >> 9));
	for (unsigned long long i = 0; i < n; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		if (every && i % every == 0)
			hit(x);
	}
	sink += x + big[n % sizeof big];
	printf("done %llu\n", (unsigned long long)sink);
	return 0;
}
