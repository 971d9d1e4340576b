/* tls: thread-local storage three ways: the compiler's __thread
 * (emulated TLS in mingw gcc, an image TLS directory in clang), TlsAlloc
 * slots, and a TLS callback that sees thread attach and detach. */
#include <stdio.h>
#include <windows.h>

static __thread int tls_counter = 100;
static __thread char tls_name[16] = "main";
static DWORD slot;
static volatile LONG callbacks_attach, callbacks_detach;

static void NTAPI on_tls(PVOID module, DWORD reason, PVOID reserved) {
	(void)module;
	(void)reserved;
	if (reason == DLL_THREAD_ATTACH)
		InterlockedIncrement(&callbacks_attach);
	if (reason == DLL_THREAD_DETACH)
		InterlockedIncrement(&callbacks_detach);
}

#ifdef _MSC_VER
#pragma section(".CRT$XLB", read)
__declspec(allocate(".CRT$XLB")) PIMAGE_TLS_CALLBACK corpus_tls_callback = on_tls;
#else
PIMAGE_TLS_CALLBACK corpus_tls_callback __attribute__((section(".CRT$XLB"), used)) = on_tls;
#endif

struct result {
	int counter;
	char name[16];
	DWORD slot_value;
};

static DWORD WINAPI worker(LPVOID arg) {
	struct result *r = arg;
	tls_counter += 5;
	snprintf(tls_name, sizeof tls_name, "worker");
	TlsSetValue(slot, (LPVOID)(ULONG_PTR)(0x1000 + tls_counter));
	Sleep(1);
	r->counter = tls_counter;
	snprintf(r->name, sizeof r->name, "%s", tls_name);
	r->slot_value = (DWORD)(ULONG_PTR)TlsGetValue(slot);
	return 0;
}

int main(void) {
	slot = TlsAlloc();
	printf("TlsAlloc ok %d\n", slot != TLS_OUT_OF_INDEXES);
	TlsSetValue(slot, (LPVOID)0x77);
	tls_counter = 1;
	struct result res[3];
	HANDLE th[3];
	for (int i = 0; i < 3; i++)
		th[i] = CreateThread(NULL, 0, worker, &res[i], 0, NULL);
	WaitForMultipleObjects(3, th, TRUE, INFINITE);
	for (int i = 0; i < 3; i++) {
		CloseHandle(th[i]);
		printf("thread %d: __thread counter %d name %s slot %#lx\n", i, res[i].counter, res[i].name, res[i].slot_value);
	}
	printf("main: __thread counter %d name %s slot %#lx\n", tls_counter, tls_name, (DWORD)(ULONG_PTR)TlsGetValue(slot));
	printf("TLS callback: attach %ld detach %ld\n", callbacks_attach, callbacks_detach);
	printf("TlsFree %d\n", TlsFree(slot));
	return 0;
}
