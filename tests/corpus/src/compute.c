/* compute: integer and bit work an emulator must get right: a sieve,
 * CRC-32 from a table, 64x64->128 multiplication, division and shifts
 * of signed values, bit counts, N-queens by recursion, and a switch
 * compiled to a jump table. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint32_t crc_table[256];

static void crc_init(void) {
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(const void *data, size_t n) {
	const unsigned char *p = data;
	uint32_t c = 0xffffffffu;
	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static int queens(int n, int row, unsigned cols, unsigned d1, unsigned d2) {
	if (row == n)
		return 1;
	int count = 0;
	for (int c = 0; c < n; c++) {
		unsigned a = 1u << c, b = 1u << (row + c), d = 1u << (row - c + n - 1);
		if ((cols & a) || (d1 & b) || (d2 & d))
			continue;
		count += queens(n, row + 1, cols | a, d1 | b, d2 | d);
	}
	return count;
}

static const char *classify(int v) {
	switch (v) {
	case 0: return "zero";
	case 1: return "one";
	case 2: return "two";
	case 3: return "three";
	case 5: return "five";
	case 8: return "eight";
	case 13: return "thirteen";
	case 21: return "twenty-one";
	default: return "other";
	}
}

int main(void) {
	static unsigned char composite[100001];
	int primes = 0, last = 0;
	for (int i = 2; i <= 100000; i++) {
		if (composite[i])
			continue;
		primes++;
		last = i;
		for (long long j = (long long)i * i; j <= 100000; j += i)
			composite[j] = 1;
	}
	printf("primes up to 100000: %d, largest %d\n", primes, last);

	crc_init();
	const char *s = "The quick brown fox jumps over the lazy dog";
	printf("crc32: %08x\n", crc32(s, strlen(s)));

	unsigned __int128 prod = (unsigned __int128)0xfedcba9876543210ull * 0x0123456789abcdefull;
	printf("128-bit product: %016llx%016llx\n", (unsigned long long)(prod >> 64), (unsigned long long)prod);
	volatile long long a = -1234567890123ll, b = 97;
	printf("div %lld mod %lld shr %lld ushr %llx\n", a / b, a % b, a >> 7, (unsigned long long)a >> 60);
	volatile int ia = -7, ib = 2;
	printf("int div %d mod %d\n", ia / ib, ia % ib);
	volatile uint64_t x = 0xf0f0f0f012345678ull;
	printf("popcount %d clz %d ctz %d bswap %016llx\n", __builtin_popcountll(x), __builtin_clzll(x >> 8),
	       __builtin_ctzll(x), (unsigned long long)__builtin_bswap64(x));
	uint32_t r = 0x80000001u;
	printf("rotl %08x rotr %08x\n", (r << 3) | (r >> 29), (r >> 5) | (r << 27));
	for (int n = 4; n <= 8; n++)
		printf("queens(%d) = %d\n", n, queens(n, 0, 0, 0, 0));
	int fib[12] = {0, 1};
	for (int i = 2; i < 12; i++)
		fib[i] = fib[i - 1] + fib[i - 2];
	for (int i = 0; i < 12; i++)
		printf("%s%s", i ? " " : "", classify(fib[i]));
	printf("\n");
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < 1000000; i++)
		h = (h ^ (uint64_t)(i & 0xff)) * 1099511628211ull;
	printf("fnv over a million bytes: %016llx\n", (unsigned long long)h);
	return 0;
}
