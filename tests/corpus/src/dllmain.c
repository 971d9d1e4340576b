/* dllmain: a program using a DLL of our own (dllmain_lib.c) imported at
 * load time, plus LoadLibrary/GetProcAddress of it and of a system DLL;
 * DllMain's thread notifications are counted around a thread's life. */
#include <stdio.h>
#include <windows.h>

__declspec(dllimport) int corpus_counts[4];
__declspec(dllimport) int corpus_base;
__declspec(dllimport) int corpus_apply(int (*fn)(int), int n);

static int square(int v) { return v * v; }

static DWORD WINAPI nothing(LPVOID arg) {
	(void)arg;
	return 0;
}

int main(void) {
	printf("main: attach count %d\n", corpus_counts[DLL_PROCESS_ATTACH]);
	printf("corpus_apply(square, 10) = %d\n", corpus_apply(square, 10));
	corpus_base = 0;
	printf("after setting the DLL's data: %d\n", corpus_apply(square, 3));

	HMODULE again = LoadLibraryA("dllmain_lib.dll");
	int (*apply)(int (*)(int), int) = (int (*)(int (*)(int), int))(void (*)(void))GetProcAddress(again, "corpus_apply");
	printf("LoadLibrary of a loaded DLL gives the same module: %d\n", apply == corpus_apply);
	FARPROC none = GetProcAddress(again, "no_such_export");
	DWORD err = GetLastError();
	printf("GetProcAddress of a missing name: %p error %lu\n", (void *)none, err);
	FreeLibrary(again);

	HANDLE t = CreateThread(NULL, 0, nothing, NULL, 0, NULL);
	WaitForSingleObject(t, INFINITE);
	CloseHandle(t);
	printf("thread attach %d detach %d\n", corpus_counts[DLL_THREAD_ATTACH], corpus_counts[DLL_THREAD_DETACH]);

	HMODULE k32 = GetModuleHandleA("kernel32.dll");
	FARPROC gtc = GetProcAddress(k32, "GetTickCount");
	printf("kernel32 is loaded: %d, GetTickCount found: %d\n", k32 != NULL, gtc != NULL);
	HMODULE missing = LoadLibraryA("no_such_library.dll");
	err = GetLastError();
	printf("LoadLibrary of a missing DLL: %p error %lu\n", (void *)missing, err);
	return 0;
}
