/* Threads for the wine userland's debugger tests: main starts two
   workers that each call work(); main waits for both.
   x86_64-w64-mingw32-gcc -O0 -g wthreads.c */
#include <stdio.h>
#include <windows.h>

static volatile LONG total;

__declspec(noinline) void work(int id) {
	InterlockedAdd(&total, id);
	printf("worker %d done\n", id);
}

static DWORD WINAPI worker(void *arg) {
	Sleep(1);
	work((int)(INT_PTR)arg);
	return 0;
}

int main(void) {
	HANDLE t[2];
	for (int i = 0; i < 2; i++)
		t[i] = CreateThread(NULL, 0, worker, (void *)(INT_PTR)(i + 1), 0, NULL);
	WaitForMultipleObjects(2, t, TRUE, INFINITE);
	printf("total %ld\n", total);
	return 0;
}
