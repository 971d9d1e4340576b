/* timefn: time conversions on fixed instants (never the clock's value):
 * gmtime, strftime, _mkgmtime, difftime, and the Win32 SYSTEMTIME and
 * FILETIME conversions. Reads the clock only to check it moves forward. */
#include <stdio.h>
#include <time.h>
#include <windows.h>

int main(void) {
	time_t instants[] = {0, 86399, 951782400, 1234567890, 2147483647};
	for (unsigned i = 0; i < sizeof instants / sizeof instants[0]; i++) {
		struct tm *tm = gmtime(&instants[i]);
		char buf[80];
		strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %a %b day%j", tm);
		printf("%lld -> %s wday=%d yday=%d\n", (long long)instants[i], buf, tm->tm_wday, tm->tm_yday);
		printf("  back: %lld\n", (long long)_mkgmtime(tm));
	}
	struct tm t = {0};
	t.tm_year = 124;
	t.tm_mon = 1;
	t.tm_mday = 29;
	t.tm_hour = 12;
	printf("2024-02-29 12:00 UTC = %lld\n", (long long)_mkgmtime(&t));
	t.tm_mday = 30; /* normalizes to March 1 */
	time_t norm = _mkgmtime(&t);
	printf("Feb 30 normalizes to month %d day %d (%lld)\n", t.tm_mon + 1, t.tm_mday, (long long)norm);
	printf("difftime %.1f\n", difftime(1000, 250));

	SYSTEMTIME st = {2001, 9, 2, 9, 1, 46, 40, 500};
	FILETIME ft;
	SystemTimeToFileTime(&st, &ft);
	ULARGE_INTEGER u;
	u.LowPart = ft.dwLowDateTime;
	u.HighPart = ft.dwHighDateTime;
	printf("FILETIME %llu\n", u.QuadPart);
	printf("unix seconds %llu\n", (u.QuadPart - 116444736000000000ULL) / 10000000ULL);
	u.QuadPart += 36000000000ULL * 24; /* one day */
	ft.dwLowDateTime = u.LowPart;
	ft.dwHighDateTime = u.HighPart;
	SYSTEMTIME next;
	FileTimeToSystemTime(&ft, &next);
	printf("plus a day: %04d-%02d-%02d %02d:%02d:%02d.%03d dow %d\n", next.wYear, next.wMonth, next.wDay,
	       next.wHour, next.wMinute, next.wSecond, next.wMilliseconds, next.wDayOfWeek);
	FILETIME a = {1, 0}, b = {2, 0};
	printf("CompareFileTime %ld %ld\n", CompareFileTime(&a, &b), CompareFileTime(&b, &b));

	time_t now1 = time(NULL);
	Sleep(10);
	time_t now2 = time(NULL);
	printf("clock runs forward: %d\n", now2 >= now1 && now1 > 1000000000);
	LARGE_INTEGER f, c1, c2;
	QueryPerformanceFrequency(&f);
	QueryPerformanceCounter(&c1);
	QueryPerformanceCounter(&c2);
	printf("performance counter: freq>0 %d monotonic %d\n", f.QuadPart > 0, c2.QuadPart >= c1.QuadPart);
	return 0;
}
