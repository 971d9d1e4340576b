/* msvc_seh: structured exception handling as MSVC compiles it (clang's
 * msvc target): __try/__except catching hardware faults (null write,
 * null read, integer divide by zero, ud2, int3) and RaiseException,
 * filters that decline, __try/__finally on normal and abnormal exits,
 * __leave, and a fault two calls deep unwinding through a __finally.
 *
 * Each fault happens in a function of its own called from the __try
 * body: clang (14) covers calls made inside a __try but not faulting
 * instructions in the body itself, even with -fasync-exceptions. */
#include "msvc_crt.h"

static volatile int *volatile nowhere;
static volatile int divisor;

__declspec(noinline) static void null_write(void) { *nowhere = 5; }
__declspec(noinline) static int null_read(void) { return *nowhere; }
__declspec(noinline) static int divide(int v) { return v / divisor; }
__declspec(noinline) static void illegal(void) { __builtin_trap(); }
__declspec(noinline) static void breakpoint(void) { __debugbreak(); }

static DWORD last_code;

static int filter(const char *what, EXCEPTION_POINTERS *ep, int verdict) {
	EXCEPTION_RECORD *r = ep->ExceptionRecord;
	last_code = r->ExceptionCode;
	printf("  filter(%s): code %#lx params %lu", what, r->ExceptionCode, r->NumberParameters);
	if (r->ExceptionCode == 0xc0000005)
		printf(" [%s at %#llx]", r->ExceptionInformation[0] ? "write" : "read",
		       (unsigned long long)r->ExceptionInformation[1]);
	printf("\n");
	return verdict;
}

__declspec(noinline) static void fault_deep(int how) {
	__try {
		if (how == 0)
			null_write();
		else
			printf("value %d\n", divide(100));
	} __finally {
		printf("  finally in fault_deep, abnormal %d\n", _abnormal_termination());
	}
}

__declspec(noinline) static void middle(int how) {
	__try {
		fault_deep(how);
	} __finally {
		printf("  finally in middle, abnormal %d\n", _abnormal_termination());
	}
}

int main(int argc, char **argv) {
	(void)argc;
	(void)argv;
	printf("null write:\n");
	__try {
		null_write();
		printf("not reached\n");
	} __except (filter("null write", _exception_info(), EXCEPTION_EXECUTE_HANDLER)) {
		printf("  caught, code %#lx\n", last_code);
	}

	printf("null read:\n");
	__try {
		printf("not reached %d\n", null_read());
	} __except (filter("null read", _exception_info(), EXCEPTION_EXECUTE_HANDLER)) {
		printf("  caught\n");
	}

	printf("divide by zero:\n");
	__try {
		printf("not reached %d\n", divide(7));
	} __except (filter("divide", _exception_info(), EXCEPTION_EXECUTE_HANDLER)) {
		printf("  caught, code %#lx\n", last_code);
	}

	printf("illegal instruction:\n");
	__try {
		illegal();
	} __except (filter("ud2", _exception_info(), EXCEPTION_EXECUTE_HANDLER)) {
		printf("  caught\n");
	}

	printf("breakpoint:\n");
	__try {
		breakpoint();
	} __except (filter("int3", _exception_info(), EXCEPTION_EXECUTE_HANDLER)) {
		printf("  caught\n");
	}

	printf("RaiseException:\n");
	ULONG_PTR args[2] = {7, 8};
	__try {
		RaiseException(0xe0001234, 0, 2, args);
	} __except (filter("raise", _exception_info(),
	                   _exception_code() == 0xe0001234 ? EXCEPTION_EXECUTE_HANDLER : EXCEPTION_CONTINUE_SEARCH)) {
		printf("  caught the right code\n");
	}

	printf("nested, inner filter declines:\n");
	__try {
		__try {
			null_write();
		} __except (filter("inner", _exception_info(), EXCEPTION_CONTINUE_SEARCH)) {
			printf("  inner handler, not reached\n");
		}
	} __except (filter("outer", _exception_info(), EXCEPTION_EXECUTE_HANDLER)) {
		printf("  outer handler\n");
	}

	printf("continuable RaiseException resumed by its filter:\n");
	__try {
		RaiseException(0xe0000042, 0, 0, 0);
		printf("  resumed after RaiseException\n");
	} __except (filter("resume", _exception_info(), EXCEPTION_CONTINUE_EXECUTION)) {
		printf("  not reached\n");
	}

	printf("finally, normal exit:\n");
	__try {
		printf("  body\n");
	} __finally {
		printf("  finally, abnormal %d\n", _abnormal_termination());
	}

	printf("leave:\n");
	__try {
		printf("  before leave\n");
		__leave;
		printf("  not reached\n");
	} __finally {
		printf("  finally after leave, abnormal %d\n", _abnormal_termination());
	}

	for (int how = 0; how < 2; how++) {
		printf("fault two calls deep (%s):\n", how ? "divide" : "null write");
		__try {
			middle(how);
		} __except (filter("deep", _exception_info(), EXCEPTION_EXECUTE_HANDLER)) {
			printf("  caught in main\n");
		}
	}
	printf("done\n");
	return 0;
}
