/* setjmp: longjmp out of nested calls, out of a callback called by the
 * CRT (qsort), and back into a loop; volatile locals keep their values. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

static jmp_buf env;
static int depth_reached;

static void dive(int depth, int target) {
	depth_reached = depth;
	if (depth == target)
		longjmp(env, depth * 10);
	dive(depth + 1, target);
	printf("never printed\n");
}

static jmp_buf sortenv;
static int compares;

static int cmp_bail(const void *a, const void *b) {
	if (++compares == 5)
		longjmp(sortenv, 1);
	return *(const int *)a - *(const int *)b;
}

int main(void) {
	for (int target = 1; target <= 4; target++) {
		int r = setjmp(env);
		if (r == 0) {
			dive(0, target * 3);
		} else {
			printf("came back with %d from depth %d\n", r, depth_reached);
		}
	}

	volatile int counter = 0;
	jmp_buf loop;
	if (setjmp(loop) < 3) {
		counter++;
		printf("loop pass %d\n", counter);
		if (counter < 3)
			longjmp(loop, counter);
	}
	printf("counter %d\n", counter);

	int v[] = {9, 3, 7, 1, 8, 2, 6, 4, 5};
	if (setjmp(sortenv) == 0) {
		qsort(v, 9, sizeof v[0], cmp_bail);
		printf("qsort finished\n");
	} else {
		printf("left qsort after %d compares\n", compares);
	}

	/* longjmp with 0 delivers 1. */
	jmp_buf zero;
	int r = setjmp(zero);
	if (r == 0)
		longjmp(zero, 0);
	printf("longjmp(0) gave %d\n", r);
	return 0;
}
