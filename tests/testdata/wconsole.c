/* wconsole: the console functions a program uses when its standard handles
 * are a console (the wine userland gives one when the stub's are a
 * terminal), and what they do when they are pipes.
 * x86_64-w64-mingw32-gcc -O1 wconsole.c */
#include <stdio.h>
#include <string.h>
#include <windows.h>

int main(void)
{
	HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE), in = GetStdHandle(STD_INPUT_HANDLE);
	DWORD mode = 0, n = 0;
	char line[256];
	BOOL ok = GetConsoleMode(out, &mode);
	printf("type out=%lu in=%lu\n", GetFileType(out), GetFileType(in));
	printf("mode out ok=%d %#lx\n", ok, mode);
	ok = GetConsoleMode(in, &mode);
	printf("mode in ok=%d %#lx\n", ok, mode);
	printf("cp %u %u\n", GetConsoleCP(), GetConsoleOutputCP());
	fflush(stdout);
	ok = WriteConsoleW(out, L"wide \x263a\n", 7, &n, NULL);
	printf("WriteConsoleW ok=%d n=%lu\n", ok, n);
	CONSOLE_SCREEN_BUFFER_INFO info;
	ok = GetConsoleScreenBufferInfo(out, &info);
	printf("screen ok=%d attr=%#x\n", ok, ok ? info.wAttributes : 0);
	fflush(stdout);
	if (SetConsoleTextAttribute(out, FOREGROUND_RED | FOREGROUND_INTENSITY)) {
		WriteFile(out, "red\n", 4, &n, NULL);
		SetConsoleTextAttribute(out, FOREGROUND_RED | FOREGROUND_GREEN | FOREGROUND_BLUE);
	}
	WriteFile(out, "cp437 \x82\n", 8, &n, NULL);
	if (SetConsoleOutputCP(CP_UTF8))
		WriteFile(out, "utf8 \xc3\xa9\n", 8, &n, NULL);
	HANDLE conout = CreateFileA("CONOUT$", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
	ok = conout != INVALID_HANDLE_VALUE && WriteFile(conout, "conout\n", 7, &n, NULL);
	printf("CONOUT$ ok=%d\n", ok);
	SetConsoleTitleA("rspstub title");
	char title[64] = "";
	GetConsoleTitleA(title, sizeof title);
	printf("title [%s]\n", title);
	WCHAR wline[64];
	ok = ReadConsoleW(in, wline, 63, &n, NULL);
	if (ok) {
		WideCharToMultiByte(CP_UTF8, 0, wline, n, line, sizeof line, NULL, NULL);
		line[n] = 0;
		printf("ReadConsoleW n=%lu crlf=%d [%.*s]\n", n, n >= 2 && wline[n - 2] == '\r' && wline[n - 1] == '\n', (int)n - 2, line);
	} else {
		printf("ReadConsoleW failed %lu\n", GetLastError());
	}
	if (fgets(line, sizeof line, stdin))
		printf("fgets [%s]\n", strtok(line, "\r\n"));
	return 0;
}
