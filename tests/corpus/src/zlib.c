/* zlib: a program linked against Debian's mingw-w64 zlib1.dll: crc32
 * and adler32, compress/uncompress round trips at several levels, and
 * a streaming deflate/inflate with a small window. Wine ships a zlib1.dll
 * of its own: the program checks that it got the one beside it. */
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include <zlib.h>

static unsigned char text[20000];

int main(void) {
	printf("zlib %s\n", zlibVersion());
	char exe[MAX_PATH], dll[MAX_PATH];
	GetModuleFileNameA(NULL, exe, MAX_PATH);
	GetModuleFileNameA(GetModuleHandleA("zlib1.dll"), dll, MAX_PATH);
	char *e = strrchr(exe, '\\'), *d = strrchr(dll, '\\');
	if (e)
		*e = 0;
	if (d)
		*d = 0;
	printf("zlib1.dll is loaded from the program's folder: %d\n", e && d && _stricmp(exe, dll) == 0);
	unsigned n = 0;
	const char *words[] = {"lorem ", "ipsum ", "dolor ", "sit ", "amet, ", "consectetur\n"};
	for (int i = 0; n + 16 < sizeof text; i++) {
		const char *w = words[(i * 7 + i / 5) % 6];
		memcpy(text + n, w, strlen(w));
		n += (unsigned)strlen(w);
	}
	printf("input %u bytes crc32 %08lx adler32 %08lx\n", n, crc32(0, text, n), adler32(1, text, n));

	static unsigned char packed[30000], unpacked[30000];
	for (int level = 0; level <= 9; level += 3) {
		uLongf plen = sizeof packed;
		int rc = compress2(packed, &plen, text, n, level);
		uLongf ulen = sizeof unpacked;
		int rc2 = uncompress(unpacked, &ulen, packed, plen);
		printf("level %d: compress %d -> %lu bytes (crc %08lx), uncompress %d -> %lu, equal %d\n", level, rc, plen,
		       crc32(0, packed, plen), rc2, ulen, ulen == n && memcmp(unpacked, text, n) == 0);
	}

	z_stream zs;
	memset(&zs, 0, sizeof zs);
	deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 10, 9, Z_DEFAULT_STRATEGY);
	zs.next_in = text;
	zs.avail_in = n;
	unsigned total = 0, chunks = 0;
	int rc;
	do {
		unsigned char out[512];
		zs.next_out = out;
		zs.avail_out = sizeof out;
		rc = deflate(&zs, Z_FINISH);
		memcpy(packed + total, out, sizeof out - zs.avail_out);
		total += sizeof out - zs.avail_out;
		chunks++;
	} while (rc == Z_OK);
	deflateEnd(&zs);
	printf("stream deflate: rc %d, %u bytes in %u chunks, crc %08lx\n", rc, total, chunks, crc32(0, packed, total));

	memset(&zs, 0, sizeof zs);
	inflateInit(&zs);
	zs.next_in = packed;
	zs.avail_in = total;
	zs.next_out = unpacked;
	zs.avail_out = sizeof unpacked;
	rc = inflate(&zs, Z_FINISH);
	printf("stream inflate: rc %d, %lu bytes, equal %d\n", rc, zs.total_out,
	       zs.total_out == n && memcmp(unpacked, text, n) == 0);
	inflateEnd(&zs);

	packed[total / 2] ^= 0x55;
	uLongf ulen = sizeof unpacked;
	printf("corrupted input: uncompress %d\n", uncompress(unpacked, &ulen, packed, total));
	return 0;
}
