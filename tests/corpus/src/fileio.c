/* fileio: stdio and Win32 file I/O in the working folder: write, seek,
 * read back, append, size, delete. */
#include <stdio.h>
#include <string.h>
#include <windows.h>

static int stdio_part(void) {
	FILE *f = fopen("data.bin", "wb");
	if (!f) { printf("fopen for writing failed\n"); return 1; }
	for (int i = 0; i < 256; i++)
		fputc(i, f);
	fwrite("tail", 1, 4, f);
	fclose(f);

	f = fopen("data.bin", "rb");
	if (!f) { printf("fopen for reading failed\n"); return 1; }
	fseek(f, 0, SEEK_END);
	printf("stdio size %ld\n", ftell(f));
	fseek(f, 100, SEEK_SET);
	unsigned char buf[8];
	size_t n = fread(buf, 1, sizeof buf, f);
	printf("read %u bytes at 100:", (unsigned)n);
	for (size_t i = 0; i < n; i++)
		printf(" %02x", buf[i]);
	printf("\n");
	fseek(f, -4, SEEK_END);
	char tail[5] = {0};
	fread(tail, 1, 4, f);
	printf("tail %s, eof before read past end: %d\n", tail, feof(f));
	fgetc(f);
	printf("eof after read past end: %d\n", feof(f) != 0);
	fclose(f);

	f = fopen("lines.txt", "w");
	fprintf(f, "one\ntwo\nthree\n");
	fclose(f);
	f = fopen("lines.txt", "a");
	fputs("four\n", f);
	fclose(f);
	f = fopen("lines.txt", "r");
	char line[64];
	int count = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		printf("line %d: %s\n", ++count, line);
	}
	fclose(f);
	/* Text mode wrote CRLF: the file is longer than the characters read. */
	f = fopen("lines.txt", "rb");
	fseek(f, 0, SEEK_END);
	printf("lines.txt is %ld bytes on disk\n", ftell(f));
	fclose(f);
	printf("remove: %d\n", remove("lines.txt"));
	printf("fopen of a removed file: %s\n", fopen("lines.txt", "r") ? "opened" : "NULL");
	return 0;
}

static int win32_part(void) {
	HANDLE h = CreateFileA("win32.dat", GENERIC_READ | GENERIC_WRITE, 0, NULL,
	                       CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		printf("CreateFileA failed: %lu\n", GetLastError());
		return 1;
	}
	DWORD done;
	const char *msg = "0123456789abcdefghijklmnopqrstuvwxyz";
	WriteFile(h, msg, (DWORD)strlen(msg), &done, NULL);
	printf("WriteFile wrote %lu\n", done);
	printf("GetFileSize %lu\n", GetFileSize(h, NULL));
	DWORD pos = SetFilePointer(h, 10, NULL, FILE_BEGIN);
	printf("SetFilePointer -> %lu\n", pos);
	char buf[16] = {0};
	ReadFile(h, buf, 6, &done, NULL);
	printf("ReadFile %lu: %s\n", done, buf);
	SetFilePointer(h, 4, NULL, FILE_BEGIN);
	SetEndOfFile(h);
	printf("after SetEndOfFile: %lu\n", GetFileSize(h, NULL));
	SetFilePointer(h, 0, NULL, FILE_BEGIN);
	memset(buf, 0, sizeof buf);
	BOOL ok = ReadFile(h, buf, sizeof buf - 1, &done, NULL);
	printf("ReadFile ok=%d n=%lu: %s\n", ok, done, buf);
	ok = ReadFile(h, buf, 4, &done, NULL);
	printf("ReadFile at end ok=%d n=%lu\n", ok, done);
	CloseHandle(h);

	h = CreateFileA("win32.dat", GENERIC_READ, 0, NULL, CREATE_NEW, 0, NULL);
	DWORD err = GetLastError();
	printf("CREATE_NEW on an existing file: %s, error %lu\n", h == INVALID_HANDLE_VALUE ? "failed" : "succeeded", err);
	h = CreateFileA("missing.dat", GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
	err = GetLastError();
	printf("OPEN_EXISTING on a missing file: %s, error %lu\n", h == INVALID_HANDLE_VALUE ? "failed" : "succeeded", err);
	DWORD attrs = GetFileAttributesA("win32.dat");
	printf("attributes: directory=%d\n", (attrs & FILE_ATTRIBUTE_DIRECTORY) != 0);
	printf("MoveFileA: %d\n", MoveFileA("win32.dat", "moved.dat"));
	printf("old name exists: %d\n", GetFileAttributesA("win32.dat") != INVALID_FILE_ATTRIBUTES);
	printf("CopyFileA: %d\n", CopyFileA("moved.dat", "copy.dat", TRUE));
	ok = DeleteFileA("moved.dat");
	printf("DeleteFileA: %d", ok);
	printf(" %d\n", DeleteFileA("copy.dat"));
	ok = DeleteFileA("moved.dat");
	err = GetLastError();
	printf("DeleteFileA again: %d, error %lu\n", ok, err);
	return 0;
}

int main(void) {
	int rc = stdio_part();
	if (rc == 0)
		rc = win32_part();
	remove("data.bin");
	printf("done\n");
	return rc;
}
