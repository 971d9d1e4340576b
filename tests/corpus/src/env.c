/* env: environment variables the program sets itself, through the CRT
 * and through Win32, and how the two views relate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

int main(void) {
	printf("unset: %s\n", getenv("CORPUS_NEVER_SET") ? "present" : "NULL");
	_putenv("CORPUS_CRT=from-putenv");
	printf("getenv CORPUS_CRT: %s\n", getenv("CORPUS_CRT"));
	char buf[256];
	DWORD n = GetEnvironmentVariableA("CORPUS_CRT", buf, sizeof buf);
	printf("GetEnvironmentVariableA CORPUS_CRT: %lu %s\n", n, n ? buf : "");

	SetEnvironmentVariableA("CORPUS_W32", "from-win32");
	n = GetEnvironmentVariableA("CORPUS_W32", buf, sizeof buf);
	printf("GetEnvironmentVariableA CORPUS_W32: %lu %s\n", n, buf);
	n = GetEnvironmentVariableA("CORPUS_W32", buf, 4);
	printf("too small a buffer asks for %lu\n", n);
	n = GetEnvironmentVariableA("CORPUS_MISSING", buf, sizeof buf);
	DWORD err = GetLastError();
	printf("missing: %lu error %lu\n", n, err);

	n = ExpandEnvironmentStringsA("[%CORPUS_W32%] [%CORPUS_MISSING%]", buf, sizeof buf);
	printf("expanded (%lu): %s\n", n, buf);

	wchar_t wbuf[64];
	SetEnvironmentVariableW(L"CORPUS_WIDE", L"wide-value");
	n = GetEnvironmentVariableW(L"corpus_wide", wbuf, 64);
	printf("names ignore case: %lu %ls\n", n, wbuf);

	SetEnvironmentVariableA("CORPUS_W32", NULL);
	n = GetEnvironmentVariableA("CORPUS_W32", buf, sizeof buf);
	printf("deleted: %lu\n", n);

	/* Count our own variables in the block, not the whole block. */
	char *block = GetEnvironmentStringsA();
	int ours = 0;
	for (char *p = block; *p; p += strlen(p) + 1)
		if (strncmp(p, "CORPUS_", 7) == 0)
			ours++;
	FreeEnvironmentStringsA(block);
	printf("CORPUS_ variables in the block: %d\n", ours);
	return 0;
}
