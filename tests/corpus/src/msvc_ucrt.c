/* msvc_ucrt: a program for clang's msvc target linked against the
 * Universal CRT the way MSVC links it: through the api-ms-win-crt-*
 * API-set DLLs (mingw-w64's libucrt.a), which the loader resolves to
 * ucrtbase.dll. It starts itself as the UCRT's startup code would, then
 * uses stdio, files, qsort, the environment and time conversions.
 * Exits with 9. */
#include <stddef.h>

#define DECL __declspec(dllimport)
typedef struct file FILE;
typedef long long time64;
struct tm {
	int tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_wday, tm_yday, tm_isdst;
};

int printf(const char *, ...);
int snprintf(char *, size_t, const char *, ...);
DECL FILE *__acrt_iob_func(unsigned);
DECL FILE *fopen(const char *, const char *);
DECL int fputs(const char *, FILE *);
DECL char *fgets(char *, int, FILE *);
DECL int fclose(FILE *);
DECL int remove(const char *);
DECL void *malloc(size_t);
DECL void *realloc(void *, size_t);
DECL void free(void *);
DECL void qsort(void *, size_t, size_t, int (*)(const void *, const void *));
DECL double strtod(const char *, char **);
DECL long strtol(const char *, char **, int);
DECL size_t strlen(const char *);
DECL int _stricmp(const char *, const char *);
DECL char *getenv(const char *);
DECL int _putenv(const char *);
DECL struct tm *_gmtime64(const time64 *);
DECL time64 _mkgmtime64(struct tm *);
DECL size_t strftime(char *, size_t, const char *, const struct tm *);
DECL __declspec(noreturn) void exit(int);
DECL int _configure_narrow_argv(int);
DECL int _initialize_narrow_environment(void);
DECL int *__p___argc(void);
DECL char ***__p___argv(void);
DECL void _set_app_type(int);

int _fltused = 0x9875;

static int by_length(const void *a, const void *b) {
	size_t x = strlen(*(char *const *)a), y = strlen(*(char *const *)b);
	if (x != y)
		return x < y ? -1 : 1;
	return _stricmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
	printf("argc %d:", argc);
	for (int i = 1; i < argc; i++)
		printf(" [%s]", argv[i]);
	printf("\n");

	const char *words[] = {"kiwi", "Fig", "banana", "apple", "date", "cherry", "plum"};
	qsort(words, 7, sizeof words[0], by_length);
	for (int i = 0; i < 7; i++)
		printf("%s%s", i ? " " : "", words[i]);
	printf("\n");

	FILE *f = fopen("ucrt.txt", "w");
	for (int i = 1; i <= 3; i++) {
		char line[32];
		snprintf(line, sizeof line, "line %d: %.2f\n", i, i / 3.0);
		fputs(line, f);
	}
	fclose(f);
	f = fopen("ucrt.txt", "r");
	char buf[64];
	while (fgets(buf, sizeof buf, f))
		printf("read %s", buf);
	fclose(f);
	printf("remove %d\n", remove("ucrt.txt"));

	int *v = 0;
	long sum = 0;
	for (int n = 1; n <= 200; n++) {
		v = realloc(v, n * sizeof *v);
		v[n - 1] = n * n;
		sum += v[n / 2];
	}
	free(v);
	printf("realloc sum %ld strtod %.4f strtol %ld\n", sum, strtod("-1.25e2", 0), strtol("z", 0, 36));

	_putenv("CORPUS_UCRT=yes");
	printf("getenv %s, unset %s\n", getenv("CORPUS_UCRT"), getenv("CORPUS_UCRT_UNSET") ? "set" : "NULL");

	time64 t = 1234567890;
	struct tm *tm = _gmtime64(&t);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", tm);
	printf("%s, back %lld\n", buf, _mkgmtime64(tm));
	printf("stdout is stream 1: %d\n", __acrt_iob_func(1) != __acrt_iob_func(2));
	return 9;
}

/* mainCRTStartup does what the UCRT's startup code does for a console
 * program before main (-Wl,-entry:mainCRTStartup). */
void mainCRTStartup(void) {
	_set_app_type(1); /* console */
	_configure_narrow_argv(2); /* _crt_argv_unexpanded_arguments */
	_initialize_narrow_environment();
	exit(main(*__p___argc(), *__p___argv()));
}
