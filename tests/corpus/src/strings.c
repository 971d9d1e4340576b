/* strings: the C library's string and conversion functions, narrow and
 * wide. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

int main(void) {
	char buf[128];
	strcpy(buf, "Hello");
	strcat(buf, ", ");
	strncat(buf, "world!!!", 6);
	printf("%s (%u)\n", buf, (unsigned)strlen(buf));
	printf("strcmp: %d %d %d\n", strcmp("abc", "abd") < 0, strcmp("b", "a") > 0, strcmp("same", "same"));
	printf("strncmp: %d\n", strncmp("prefix-one", "prefix-two", 7));
	printf("strchr: %s, strrchr: %s\n", strchr(buf, 'o'), strrchr(buf, 'o'));
	printf("strstr: %s\n", strstr("haystack with needle inside", "needle"));
	printf("strspn %u strcspn %u\n", (unsigned)strspn("123abc", "0123456789"), (unsigned)strcspn("abc;def", ";"));

	char csv[] = "alpha,beta,,gamma;delta";
	int n = 0;
	for (char *tok = strtok(csv, ",;"); tok; tok = strtok(NULL, ",;"))
		printf("token %d: %s\n", ++n, tok);

	char *end;
	printf("strtol: %ld", strtol("  -1234xyz", &end, 10));
	printf(" rest=%s", end);
	printf(" hex=%ld oct=%ld auto=%ld\n", strtol("ff", NULL, 16), strtol("777", NULL, 8), strtol("0x1A", NULL, 0));
	printf("strtoul: %lu, atoi: %d, atol: %ld\n", strtoul("4000000000", NULL, 10), atoi("  42abc"), atol("-99"));
	printf("strtod: %.4f\n", strtod("2.5e3", NULL));

	memset(buf, 0, sizeof buf);
	memcpy(buf, "abcdefghij", 10);
	memmove(buf + 2, buf, 6);
	printf("memmove: %s\n", buf);
	printf("memcmp: %d, memchr: %s\n", memcmp("abc", "abd", 3) < 0, (char *)memchr(buf, 'f', 10));

	char up[32];
	const char *mixed = "MiXeD cAsE 123";
	for (int i = 0; ; i++) {
		up[i] = (char)toupper((unsigned char)mixed[i]);
		if (!mixed[i])
			break;
	}
	printf("upper: %s\n", up);
	int alpha = 0, digit = 0, space = 0;
	for (const char *p = mixed; *p; p++) {
		alpha += isalpha((unsigned char)*p) != 0;
		digit += isdigit((unsigned char)*p) != 0;
		space += isspace((unsigned char)*p) != 0;
	}
	printf("alpha %d digit %d space %d\n", alpha, digit, space);

	snprintf(buf, sizeof buf, "[%5d|%-5d|%05d|%x|%X|%o|%c|%%|%.3s|%10s]", 42, 42, 42, 255, 255, 8, 'Z', "truncate", "right");
	printf("%s\n", buf);
	int w = snprintf(buf, 8, "%s", "0123456789");
	printf("snprintf into 8: \"%s\" (wanted %d)\n", buf, w);
	printf("lld: %lld %llu %llx\n", -9007199254740993LL, 18446744073709551615ULL, 0xdeadbeefcafeULL);

	wchar_t wbuf[64];
	wcscpy(wbuf, L"wide ");
	wcscat(wbuf, L"string");
	printf("wcslen %u, wcscmp %d\n", (unsigned)wcslen(wbuf), wcscmp(wbuf, L"wide string"));
	char narrow[64];
	size_t conv = wcstombs(narrow, wbuf, sizeof narrow);
	printf("wcstombs %u: %s\n", (unsigned)conv, narrow);
	wchar_t back[64];
	conv = mbstowcs(back, "round trip", 64);
	printf("mbstowcs %u, equal %d\n", (unsigned)conv, wcscmp(back, L"round trip") == 0);
	printf("wcschr: %d\n", (int)(wcschr(wbuf, L's') - wbuf));
	char *dup = strdup("duplicate");
	printf("strdup: %s\n", dup);
	free(dup);
	return 0;
}
