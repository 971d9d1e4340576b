/* x86_64-w64-mingw32-gcc -shared -o dllc.dll dllc.c; loaded with LoadLibrary */
#include <windows.h>
#include <stdio.h>
BOOL WINAPI DllMain(HINSTANCE h, DWORD reason, LPVOID reserved) {
	if (reason == DLL_PROCESS_ATTACH) printf("dllc attach (static=%d)\n", reserved != 0);
	return TRUE;
}
__declspec(dllexport) int twice(int x) { return 2 * x; }
