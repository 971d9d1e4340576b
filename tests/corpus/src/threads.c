/* threads: CreateThread and waits, a critical section, Interlocked
 * operations, events for a strict ping-pong, a semaphore and a mutex.
 * Output is printed in an order the synchronization fixes. */
#include <stdio.h>
#include <windows.h>

#define WORKERS 4
#define ROUNDS 20000

static CRITICAL_SECTION cs;
static long long guarded;
static volatile LONG atomic;
static HANDLE ping, pong;
static char trace[64];
static int tracelen;

static DWORD WINAPI adder(LPVOID arg) {
	int id = (int)(INT_PTR)arg;
	for (int i = 0; i < ROUNDS; i++) {
		EnterCriticalSection(&cs);
		guarded += id;
		LeaveCriticalSection(&cs);
		InterlockedIncrement(&atomic);
	}
	return 100 + id;
}

static DWORD WINAPI ponger(LPVOID arg) {
	(void)arg;
	for (int i = 0; i < 5; i++) {
		WaitForSingleObject(ping, INFINITE);
		trace[tracelen++] = 'o';
		SetEvent(pong);
	}
	return 0;
}

static HANDLE sem, mutex;
static volatile LONG inside, most_inside;

static DWORD WINAPI limited(LPVOID arg) {
	(void)arg;
	WaitForSingleObject(sem, INFINITE);
	LONG now = InterlockedIncrement(&inside);
	WaitForSingleObject(mutex, INFINITE);
	if (now > most_inside)
		most_inside = now;
	ReleaseMutex(mutex);
	Sleep(2);
	InterlockedDecrement(&inside);
	ReleaseSemaphore(sem, 1, NULL);
	return 0;
}

int main(void) {
	InitializeCriticalSection(&cs);
	HANDLE th[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		th[i] = CreateThread(NULL, 0, adder, (LPVOID)(INT_PTR)(i + 1), 0, NULL);
	DWORD w = WaitForMultipleObjects(WORKERS, th, TRUE, INFINITE);
	printf("wait all: %lu\n", w);
	for (int i = 0; i < WORKERS; i++) {
		DWORD code;
		GetExitCodeThread(th[i], &code);
		printf("thread %d exit code %lu\n", i, code);
		CloseHandle(th[i]);
	}
	printf("guarded sum %lld (want %lld), atomic %ld\n", guarded, (long long)ROUNDS * (1 + 2 + 3 + 4), atomic);
	DeleteCriticalSection(&cs);

	LONG v = 10;
	printf("InterlockedExchange old %ld", InterlockedExchange(&v, 20));
	printf(", CompareExchange old %ld", InterlockedCompareExchange(&v, 30, 20));
	printf(", failed CompareExchange old %ld", InterlockedCompareExchange(&v, 40, 20));
	printf(", ExchangeAdd old %ld", InterlockedExchangeAdd(&v, 5));
	printf(", now %ld\n", v);

	ping = CreateEventA(NULL, FALSE, FALSE, NULL);
	pong = CreateEventA(NULL, FALSE, FALSE, NULL);
	HANDLE t = CreateThread(NULL, 0, ponger, NULL, 0, NULL);
	for (int i = 0; i < 5; i++) {
		trace[tracelen++] = 'i';
		SetEvent(ping);
		WaitForSingleObject(pong, INFINITE);
	}
	WaitForSingleObject(t, INFINITE);
	CloseHandle(t);
	trace[tracelen] = 0;
	printf("ping-pong: %s\n", trace);
	printf("timed-out wait: %lu\n", WaitForSingleObject(ping, 10));

	HANDLE manual = CreateEventA(NULL, TRUE, FALSE, NULL);
	SetEvent(manual);
	printf("manual event stays set: %lu %lu\n", WaitForSingleObject(manual, 0), WaitForSingleObject(manual, 0));
	ResetEvent(manual);
	printf("after reset: %lu\n", WaitForSingleObject(manual, 0));
	CloseHandle(manual);

	sem = CreateSemaphoreA(NULL, 2, 2, NULL);
	mutex = CreateMutexA(NULL, FALSE, NULL);
	HANDLE lt[6];
	for (int i = 0; i < 6; i++)
		lt[i] = CreateThread(NULL, 0, limited, NULL, 0, NULL);
	WaitForMultipleObjects(6, lt, TRUE, INFINITE);
	for (int i = 0; i < 6; i++)
		CloseHandle(lt[i]);
	printf("semaphore of 2 allowed at most 2 inside: %d\n", most_inside >= 1 && most_inside <= 2);
	LONG prev;
	BOOL ok = ReleaseSemaphore(sem, 1, &prev);
	DWORD err = GetLastError();
	printf("ReleaseSemaphore past its maximum: %d error %lu\n", ok, err);
	ok = ReleaseMutex(mutex);
	err = GetLastError();
	printf("ReleaseMutex not owned: %d error %lu\n", ok, err);
	CloseHandle(sem);
	CloseHandle(mutex);
	return 0;
}
