/* dllload: loads version.dll at run time and calls into it, then calls
 * after(): the first stop after the load can be a breakpoint (issue 16
 * items 2 and 9: a breakpoint stop that also reports a new DLL; --break
 * on a function of a DLL loaded later). */
#include <windows.h>
#include <stdio.h>

__attribute__((noinline)) int after(int x)
{
	return x + 1;
}

int main(void)
{
	HMODULE h = LoadLibraryA("version.dll");
	if (h == NULL) {
		printf("no version.dll\n");
		return 2;
	}
	typedef DWORD(WINAPI * sizefn)(LPCSTR, LPDWORD);
	sizefn f = (sizefn)GetProcAddress(h, "GetFileVersionInfoSizeA");
	DWORD handle = 0, n = 1234;
	if (f != NULL)
		n = f("C:\\no\\such.dll", &handle);
	printf("size %lu\n", n);
	return after((int)n) == 1 ? 0 : 3;
}
