/* win32info: Win32 calls whose answers do not depend on the host:
 * GetSystemInfo's fixed fields, string comparison and conversion,
 * FormatMessageW of known codes, the system folder's last component. */
#include <stdio.h>
#include <wchar.h>
#include <windows.h>

static int sign(int v) { return (v > 0) - (v < 0); }

int main(void) {
	SYSTEM_INFO si;
	GetSystemInfo(&si);
	printf("arch %u page %lu granularity %lu\n", si.wProcessorArchitecture, si.dwPageSize, si.dwAllocationGranularity);
	printf("min app address %#llx\n", (unsigned long long)(ULONG_PTR)si.lpMinimumApplicationAddress);

	printf("lstrcmpW: %d %d %d\n", sign(lstrcmpW(L"apple", L"Banana")), sign(lstrcmpW(L"same", L"same")),
	       sign(lstrcmpW(L"b", L"a")));
	printf("lstrcmpiW: %d, lstrlenW: %d\n", lstrcmpiW(L"MiXeD", L"mixed"), lstrlenW(L"seven c"));
	printf("lstrcmpA: %d %d\n", sign(lstrcmpA("a", "B")), sign(lstrcmpA("co-op", "coop")));
	printf("CompareStringW: %d %d %d\n",
	       CompareStringW(LOCALE_INVARIANT, 0, L"abc", -1, L"abd", -1),
	       CompareStringW(LOCALE_INVARIANT, NORM_IGNORECASE, L"ABC", -1, L"abc", -1),
	       CompareStringW(LOCALE_INVARIANT, 0, L"b", -1, L"a", -1));
	printf("CompareStringOrdinal: %d\n", CompareStringOrdinal(L"Ab", -1, L"aB", -1, TRUE));

	const char *utf8 = "na\xc3\xafve caf\xc3\xa9 \xe2\x82\xac 1";
	int wn = MultiByteToWideChar(CP_UTF8, 0, utf8, -1, NULL, 0);
	wchar_t w[64];
	MultiByteToWideChar(CP_UTF8, 0, utf8, -1, w, 64);
	printf("UTF-8 to UTF-16: %d units:", wn);
	for (int i = 0; i < wn; i++)
		printf(" %04x", w[i]);
	printf("\n");
	char back[64];
	int bn = WideCharToMultiByte(CP_UTF8, 0, w, -1, back, sizeof back, NULL, NULL);
	printf("back to UTF-8: %d bytes, same %d\n", bn, strcmp(back, utf8) == 0);
	BOOL lossy = FALSE;
	WideCharToMultiByte(20127, 0, L"\x20ac", -1, back, sizeof back, NULL, &lossy);
	printf("euro in US-ASCII: used default char %d -> %s\n", lossy, back);
	CharUpperBuffW(w, wn - 1);
	printf("CharUpperBuffW:");
	for (int i = 0; i < wn - 1; i++)
		printf(" %04x", w[i]);
	printf("\n");

	DWORD codes[] = {ERROR_FILE_NOT_FOUND, ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER};
	for (int i = 0; i < 3; i++) {
		wchar_t msg[256];
		DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, codes[i],
		                         MAKELANGID(LANG_ENGLISH, SUBLANG_ENGLISH_US), msg, 256, NULL);
		while (n && (msg[n - 1] == L'\n' || msg[n - 1] == L'\r'))
			msg[--n] = 0;
		printf("error %lu: \"%ls\"\n", codes[i], msg);
	}
	wchar_t fmt[128];
	DWORD_PTR args[] = {(DWORD_PTR)L"insert", 42};
	FormatMessageW(FORMAT_MESSAGE_FROM_STRING | FORMAT_MESSAGE_ARGUMENT_ARRAY, L"[%1] [%2!d!] [%1!5s!]", 0, 0,
	               fmt, 128, (va_list *)args);
	printf("FormatMessageW from a string: %ls\n", fmt);

	wchar_t sys[MAX_PATH];
	UINT len = GetSystemDirectoryW(sys, MAX_PATH);
	wchar_t *last = wcsrchr(sys, L'\\');
	printf("system folder ends in %ls (length matches %d)\n", last ? last : L"?", len == wcslen(sys));
	wchar_t win[MAX_PATH];
	GetWindowsDirectoryW(win, MAX_PATH);
	printf("system folder is inside the Windows folder: %d\n", _wcsnicmp(sys, win, wcslen(win)) == 0);

	SetLastError(1234);
	printf("GetLastError %lu\n", GetLastError());
	printf("GetCurrentProcess %p GetCurrentThread %p\n", GetCurrentProcess(), GetCurrentThread());
	printf("IsDebuggerPresent %d\n", IsDebuggerPresent());
	return 0;
}
