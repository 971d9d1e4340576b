/* veh: vectored exception handlers: one that skips a RaiseException
 * (EXCEPTION_CONTINUE_EXECUTION), handlers called in order, removal,
 * and the exception's code, flags and parameters as the handler sees
 * them. */
#include <stdio.h>
#include <windows.h>

static int calls_first, calls_second;

static LONG CALLBACK first(PEXCEPTION_POINTERS ep) {
	calls_first++;
	EXCEPTION_RECORD *r = ep->ExceptionRecord;
	printf("first handler: code %#lx flags %lu params %lu", r->ExceptionCode, r->ExceptionFlags,
	       r->NumberParameters);
	for (DWORD i = 0; i < r->NumberParameters; i++)
		printf(" %llu", (unsigned long long)r->ExceptionInformation[i]);
	printf("\n");
	if (r->ExceptionCode == 0xe0000001)
		return EXCEPTION_CONTINUE_EXECUTION;
	return EXCEPTION_CONTINUE_SEARCH;
}

static LONG CALLBACK second(PEXCEPTION_POINTERS ep) {
	calls_second++;
	printf("second handler: code %#lx\n", ep->ExceptionRecord->ExceptionCode);
	return EXCEPTION_CONTINUE_EXECUTION;
}

static volatile int after;

int main(void) {
	PVOID h1 = AddVectoredExceptionHandler(1, first);
	PVOID h2 = AddVectoredExceptionHandler(0, second);
	printf("handlers added: %d\n", h1 != NULL && h2 != NULL);

	ULONG_PTR params[3] = {1, 22, 333};
	RaiseException(0xe0000001, 0, 3, params);
	after = 1;
	printf("continued after the first exception: %d\n", after);

	RaiseException(0xe0000002, 0, 0, NULL);
	printf("continued after the second exception (first %d, second %d)\n", calls_first, calls_second);

	printf("remove first: %lu\n", RemoveVectoredExceptionHandler(h1));
	RaiseException(0xe0000003, 0, 1, params);
	printf("third exception seen by the second handler only (first %d, second %d)\n", calls_first, calls_second);
	printf("remove second: %lu", RemoveVectoredExceptionHandler(h2));
	printf(", again: %lu\n", RemoveVectoredExceptionHandler(h2));
	return 0;
}
