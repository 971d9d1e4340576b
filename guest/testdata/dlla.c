/* x86_64-w64-mingw32-gcc -shared -Wl,--image-base=0x180000000 -o dlla.dll dlla.c dllb.dll */
#include <windows.h>
#include <stdio.h>
__declspec(dllimport) int mul(int x);
static const char *greeting = "dlla attach"; /* needs a base relocation */
BOOL WINAPI DllMain(HINSTANCE h, DWORD reason, LPVOID reserved) {
	if (reason == DLL_PROCESS_ATTACH) printf("%s (static=%d)\n", greeting, reserved != 0);
	return TRUE;
}
__declspec(dllexport) int add_mul(int x, int y) { return mul(x + y); }
