/* x86_64-w64-mingw32-gcc -o usedll.exe usedll.c dlla.dll */
#include <windows.h>
#include <stdio.h>
__declspec(dllimport) int add_mul(int x, int y);
int main(void) {
	printf("add_mul(2,5)=%d\n", add_mul(2, 5));
	HMODULE h = LoadLibraryA("dllc.dll");
	int (*twice)(int) = (int (*)(int))GetProcAddress(h, "twice");
	printf("twice(21)=%d missing=%p by-ordinal=%d\n", twice ? twice(21) : -1, (void *)GetProcAddress(h, "nope"),
	       GetProcAddress(h, (LPCSTR)1) == (FARPROC)twice);
	HMODULE k = GetModuleHandleA("kernel32.dll");
	printf("kernel32 %s\n", k && GetProcAddress(k, "GetTickCount") ? "ok" : "missing");
	return 0;
}
