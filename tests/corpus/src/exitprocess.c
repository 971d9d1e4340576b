/* exitprocess: ExitProcess from a second thread while main waits; the
 * process ends with that thread's code and main never prints again. */
#include <stdio.h>
#include <windows.h>

static DWORD WINAPI ender(LPVOID arg) {
	(void)arg;
	printf("thread: calling ExitProcess(201)\n");
	fflush(stdout);
	ExitProcess(201);
	return 0;
}

int main(void) {
	printf("main: starting the thread\n");
	fflush(stdout);
	HANDLE t = CreateThread(NULL, 0, ender, NULL, 0, NULL);
	WaitForSingleObject(t, INFINITE);
	printf("main: never printed\n");
	return 0;
}
