/* qsort: qsort and bsearch with callbacks over ints, strings and
 * structs, plus a stable two-key order built on top. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct person {
	const char *name;
	int age;
};

static int calls;

static int by_int(const void *a, const void *b) {
	calls++;
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static int by_str(const void *a, const void *b) {
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int by_age_then_name(const void *a, const void *b) {
	const struct person *p = a, *q = b;
	if (p->age != q->age)
		return p->age - q->age;
	return strcmp(p->name, q->name);
}

int main(void) {
	int v[40];
	unsigned seed = 12345;
	for (int i = 0; i < 40; i++) {
		seed = seed * 1103515245u + 12345u;
		v[i] = (int)((seed >> 16) % 1000) - 500;
	}
	qsort(v, 40, sizeof v[0], by_int);
	printf("sorted:");
	for (int i = 0; i < 40; i++)
		printf(" %d", v[i]);
	printf("\ncomparator was called: %s\n", calls > 40 ? "yes" : "no");
	for (int i = 0; i < 40; i += 13) {
		int *hit = bsearch(&v[i], v, 40, sizeof v[0], by_int);
		printf("bsearch %d: found at %d\n", v[i], (int)(hit - v));
	}
	int missing = 10000;
	printf("bsearch %d: %s\n", missing, bsearch(&missing, v, 40, sizeof v[0], by_int) ? "found" : "not found");

	const char *words[] = {"pear", "apple", "fig", "banana", "cherry", "date", "apricot", "Zucchini"};
	size_t nw = sizeof words / sizeof words[0];
	qsort(words, nw, sizeof words[0], by_str);
	for (size_t i = 0; i < nw; i++)
		printf("%s%s", i ? "," : "", words[i]);
	printf("\n");
	const char *key = "date";
	const char **w = bsearch(&key, words, nw, sizeof words[0], by_str);
	printf("date is word %d\n", w ? (int)(w - words) : -1);

	struct person people[] = {
		{"Ann", 31}, {"Bob", 25}, {"Cid", 31}, {"Dee", 19}, {"Eve", 25}, {"Abe", 31},
	};
	qsort(people, 6, sizeof people[0], by_age_then_name);
	for (int i = 0; i < 6; i++)
		printf("%s(%d) ", people[i].name, people[i].age);
	printf("\n");
	return 0;
}
