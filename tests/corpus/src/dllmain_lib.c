/* dllmain_lib: a DLL of our own. DllMain reports each notification
 * through a counter the program reads; the DLL also exports data and a
 * function that calls back into the program. */
#include <stdio.h>
#include <windows.h>

__declspec(dllexport) int corpus_counts[4];
__declspec(dllexport) int corpus_base = 1000;

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved) {
	(void)inst;
	(void)reserved;
	if (reason < 4)
		corpus_counts[reason]++;
	if (reason == DLL_PROCESS_ATTACH) {
		printf("DllMain: process attach\n");
		fflush(stdout);
	}
	return TRUE;
}

__declspec(dllexport) int corpus_apply(int (*fn)(int), int n) {
	int total = corpus_base;
	for (int i = 1; i <= n; i++)
		total += fn(i);
	return total;
}
