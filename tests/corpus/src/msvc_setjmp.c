/* msvc_setjmp: setjmp/longjmp as MSVC programs use them on x64: clang
 * passes the frame to msvcrt's _setjmp, so longjmp unwinds the stack the
 * way an exception does and runs the __finally blocks it leaves. */
#include "msvc_crt.h"

typedef struct {
	unsigned long long part[2];
} __attribute__((aligned(16))) setjmp_float128;
typedef setjmp_float128 jmp_buf[16];
int _setjmp(jmp_buf);
DECL __declspec(noreturn) void longjmp(jmp_buf, int);

static jmp_buf env;
static int finally_runs;

__declspec(noinline) static void leaf(int v) {
	printf("  leaf %d jumps\n", v);
	longjmp(env, v);
}

__declspec(noinline) static void guarded(int v) {
	__try {
		leaf(v);
	} __finally {
		finally_runs++;
		printf("  finally in guarded, abnormal %d\n", _abnormal_termination());
	}
}

__declspec(noinline) static void recurse(int depth, int v) {
	if (depth == 0) {
		guarded(v);
		return;
	}
	__try {
		recurse(depth - 1, v);
	} __finally {
		finally_runs++;
		printf("  finally at depth %d\n", depth);
	}
}

int main(int argc, char **argv) {
	(void)argv;
	volatile int round = 0;
	int r = _setjmp(env);
	printf("setjmp returned %d (round %d)\n", r, round);
	if (round < 3) {
		round++;
		recurse(round - 1, round * 10 + argc);
	}
	printf("finally blocks run: %d\n", finally_runs);
	return 0;
}
