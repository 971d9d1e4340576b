/* msvc_threads: threads in a program built by clang's msvc target:
 * _beginthreadex, a critical section, Interlocked intrinsics, and
 * __declspec(thread) variables served by an image TLS directory this
 * file builds itself (MSVC's CRT would supply _tls_used). */
#include "msvc_crt.h"

/* The image TLS directory: lld-link points the PE header's TLS entry at
 * the symbol _tls_used. The .tls$ sections are merged in name order, so
 * _tls_start and _tls_end bracket every thread-local variable. */
typedef struct {
	unsigned long long StartAddressOfRawData;
	unsigned long long EndAddressOfRawData;
	unsigned long long AddressOfIndex;
	unsigned long long AddressOfCallBacks;
	DWORD SizeOfZeroFill;
	DWORD Characteristics;
} tls_directory;
typedef void(__stdcall *tls_callback)(void *, DWORD, void *);

unsigned long _tls_index;
#pragma section(".tls", read, write)
#pragma section(".tls$ZZZ", read, write)
#pragma section(".CRT$XLA", read)
#pragma section(".CRT$XLZ", read)
__declspec(allocate(".tls")) char _tls_start = 0;
__declspec(allocate(".tls$ZZZ")) char _tls_end = 0;
__declspec(allocate(".CRT$XLA")) tls_callback __xl_a = 0;
__declspec(allocate(".CRT$XLZ")) tls_callback __xl_z = 0;
const tls_directory _tls_used = {
	(unsigned long long)&_tls_start, (unsigned long long)&_tls_end, (unsigned long long)&_tls_index,
	(unsigned long long)(&__xl_a + 1), 0, 0,
};

static __declspec(thread) int per_thread = 7;
static __declspec(thread) long long per_thread_sum;

static CRITICAL_SECTION cs;
static long long shared_total;
static volatile long counter;

static unsigned __stdcall work(void *arg) {
	int id = (int)(ULONG_PTR)arg;
	per_thread += id;
	for (int i = 1; i <= 1000; i++) {
		per_thread_sum += i * per_thread;
		_InterlockedIncrement(&counter);
	}
	EnterCriticalSection(&cs);
	shared_total += per_thread_sum;
	LeaveCriticalSection(&cs);
	return (unsigned)per_thread;
}

int main(int argc, char **argv) {
	(void)argc;
	(void)argv;
	InitializeCriticalSection(&cs);
	HANDLE th[4];
	for (int i = 0; i < 4; i++)
		th[i] = (HANDLE)_beginthreadex(0, 0, work, (void *)(ULONG_PTR)(i + 1), 0, 0);
	WaitForMultipleObjects(4, th, 1, INFINITE);
	for (int i = 0; i < 4; i++) {
		DWORD code;
		GetExitCodeThread(th[i], &code);
		printf("thread %d returned its per-thread value %lu\n", i + 1, code);
		CloseHandle(th[i]);
	}
	printf("main's per-thread value %d sum %lld\n", per_thread, per_thread_sum);
	printf("shared total %lld counter %ld\n", shared_total, counter);
	printf("_InterlockedCompareExchange old %ld\n", _InterlockedCompareExchange(&counter, 1, 4000));
	printf("counter now %ld\n", counter);
	DeleteCriticalSection(&cs);
	return 0;
}
