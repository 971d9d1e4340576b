/* heap: malloc/realloc/free stress driven by a fixed pseudo-random
 * sequence, with contents checked, then a private Win32 heap and
 * VirtualAlloc. Prints checksums, never addresses. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#define SLOTS 257

static uint32_t state = 2463534242u;
static uint32_t next(void) {
	state ^= state << 13;
	state ^= state >> 17;
	state ^= state << 5;
	return state;
}

int main(void) {
	unsigned char *slot[SLOTS] = {0};
	size_t size[SLOTS] = {0};
	unsigned bad = 0, allocs = 0, frees = 0, reallocs = 0;
	for (int round = 0; round < 5000; round++) {
		uint32_t r = next();
		int i = r % SLOTS;
		size_t want = (r >> 9) % ((r & 0x100) ? 20000 : 300) + 1;
		if (slot[i] && size[i]) {
			for (size_t k = 0; k < size[i]; k += 97)
				if (slot[i][k] != (unsigned char)(i + k))
					bad++;
		}
		switch ((r >> 28) & 3) {
		case 0:
		case 1:
			free(slot[i]);
			slot[i] = malloc(want);
			size[i] = want;
			allocs++;
			break;
		case 2: {
			unsigned char *p = realloc(slot[i], want);
			if (!p) {
				printf("realloc failed\n");
				return 1;
			}
			size_t keep = size[i] < want ? size[i] : want;
			for (size_t k = 0; k < keep; k += 97)
				if (p[k] != (unsigned char)(i + k))
					bad++;
			slot[i] = p;
			size[i] = want;
			reallocs++;
			break;
		}
		default:
			free(slot[i]);
			slot[i] = NULL;
			size[i] = 0;
			frees++;
		}
		for (size_t k = 0; k < size[i]; k++)
			slot[i][k] = (unsigned char)(i + k);
	}
	size_t live = 0;
	for (int i = 0; i < SLOTS; i++) {
		live += size[i];
		free(slot[i]);
	}
	printf("allocs %u reallocs %u frees %u bad %u live bytes %u\n", allocs, reallocs, frees, bad, (unsigned)live);

	void *z = calloc(1000, 8);
	int nonzero = 0;
	for (int k = 0; k < 8000; k++)
		nonzero += ((unsigned char *)z)[k] != 0;
	free(z);
	printf("calloc nonzero bytes: %d\n", nonzero);

	HANDLE heap = HeapCreate(0, 0, 0);
	char *blocks[100];
	for (int i = 0; i < 100; i++) {
		blocks[i] = HeapAlloc(heap, HEAP_ZERO_MEMORY, 16 + i * 40);
		memset(blocks[i], 'a' + i % 26, 16 + i * 40);
	}
	unsigned long sum = 0;
	for (int i = 0; i < 100; i += 2) {
		blocks[i] = HeapReAlloc(heap, 0, blocks[i], 5000 + i);
		sum += (unsigned char)blocks[i][15] + HeapSize(heap, 0, blocks[i]);
	}
	for (int i = 0; i < 100; i++)
		HeapFree(heap, 0, blocks[i]);
	printf("private heap sum %lu destroy %d\n", sum, HeapDestroy(heap));

	unsigned char *big = malloc(3 << 20);
	for (size_t k = 0; k < (3u << 20); k += 4096)
		big[k] = (unsigned char)(k >> 12);
	unsigned long bsum = 0;
	for (size_t k = 0; k < (3u << 20); k += 4096)
		bsum += big[k];
	free(big);
	printf("3 MiB block sum %lu\n", bsum);

	unsigned char *v = VirtualAlloc(NULL, 1 << 20, MEM_RESERVE, PAGE_NOACCESS);
	VirtualAlloc(v + 65536, 8192, MEM_COMMIT, PAGE_READWRITE);
	v[65536] = 7;
	v[65536 + 8191] = 9;
	MEMORY_BASIC_INFORMATION mbi;
	VirtualQuery(v + 65536, &mbi, sizeof mbi);
	printf("VirtualQuery: size %lu state commit %d protect rw %d\n", (unsigned long)mbi.RegionSize,
	       mbi.State == MEM_COMMIT, mbi.Protect == PAGE_READWRITE);
	VirtualQuery(v, &mbi, sizeof mbi);
	printf("reserved part: state reserve %d\n", mbi.State == MEM_RESERVE);
	DWORD old = 0;
	BOOL ok = VirtualProtect(v + 65536, 4096, PAGE_READONLY, &old);
	printf("VirtualProtect %d old rw %d\n", ok, old == PAGE_READWRITE);
	int value = v[65536] + v[65536 + 8191];
	printf("value %d, VirtualFree %d\n", value, VirtualFree(v, 0, MEM_RELEASE));
	return 0;
}
