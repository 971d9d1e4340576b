/* escape: a guest whose output and strings carry terminal escape
 * sequences (clear screen, set the window title). Its stdout is its own
 * and passes through; wherever the stub logs a guest string (here
 * OutputDebugString and a failed LoadLibrary), the sequences must come
 * out escaped. */
#include <stdio.h>
#include <windows.h>

int main(void)
{
	printf("\x1b[2J\x1b]0;pwned\x07\n");
	fflush(stdout);
	OutputDebugStringA("\x1b]0;pwned-ods\x07\x1b[2J");
	if (LoadLibraryA("\x1b]0;pwned-dll\x07.dll"))
		return 1;
	return 0;
}
