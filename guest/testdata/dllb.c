/* x86_64-w64-mingw32-gcc -shared -Wl,--image-base=0x180000000 -o dllb.dll dllb.c */
#include <windows.h>
#include <stdio.h>
static int factor;
BOOL WINAPI DllMain(HINSTANCE h, DWORD reason, LPVOID reserved) {
	if (reason == DLL_PROCESS_ATTACH) { factor = 3; printf("dllb attach\n"); }
	return TRUE;
}
__declspec(dllexport) int mul(int x) { return x * factor; }
