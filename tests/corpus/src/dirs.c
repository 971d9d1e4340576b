/* dirs: make a small tree, list it with FindFirstFile/FindNextFile
 * (sorted, since the order a file system returns is its own), walk it
 * recursively, then remove it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

static int cmp(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void touch(const char *path, int size) {
	HANDLE h = CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
	char buf[64];
	memset(buf, 'x', sizeof buf);
	DWORD done;
	WriteFile(h, buf, size, &done, NULL);
	CloseHandle(h);
}

/* list prints the entries of dir matching pattern, sorted, with sizes. */
static void list(const char *dir, int depth) {
	char pattern[MAX_PATH];
	snprintf(pattern, sizeof pattern, "%s\\*", dir);
	WIN32_FIND_DATAA fd;
	HANDLE h = FindFirstFileA(pattern, &fd);
	if (h == INVALID_HANDLE_VALUE) {
		printf("FindFirstFileA(%s) failed: %lu\n", pattern, GetLastError());
		return;
	}
	char *names[64];
	int n = 0;
	do {
		if (strcmp(fd.cFileName, ".") == 0 || strcmp(fd.cFileName, "..") == 0)
			continue;
		char *s = malloc(strlen(fd.cFileName) + 16);
		sprintf(s, "%s%s %lu", fd.cFileName,
		        (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) ? "\\" : "",
		        fd.nFileSizeLow);
		names[n++] = s;
	} while (n < 64 && FindNextFileA(h, &fd));
	DWORD err = GetLastError();
	printf("%*sFindNextFileA ended with error %lu\n", depth * 2, "", err);
	FindClose(h);
	qsort(names, n, sizeof names[0], cmp);
	for (int i = 0; i < n; i++) {
		printf("%*s%s\n", depth * 2, "", names[i]);
		char *bs = strchr(names[i], '\\');
		if (bs) {
			char sub[MAX_PATH];
			snprintf(sub, sizeof sub, "%s\\%.*s", dir, (int)(bs - names[i]), names[i]);
			list(sub, depth + 1);
		}
		free(names[i]);
	}
}

int main(void) {
	printf("CreateDirectoryA tree: %d\n", CreateDirectoryA("tree", NULL));
	BOOL ok = CreateDirectoryA("tree", NULL);
	DWORD err = GetLastError();
	printf("again: %d, error %lu\n", ok, err);
	CreateDirectoryA("tree\\beta", NULL);
	CreateDirectoryA("tree\\alpha", NULL);
	CreateDirectoryA("tree\\alpha\\deep", NULL);
	touch("tree\\zeta.txt", 3);
	touch("tree\\Eta.txt", 10);
	touch("tree\\alpha\\one.c", 1);
	touch("tree\\alpha\\deep\\two.h", 22);
	touch("tree\\beta\\three.txt", 0);
	touch("tree\\b.dat", 64);
	list("tree", 0);

	WIN32_FIND_DATAA fd;
	HANDLE h = FindFirstFileA("tree\\*.txt", &fd);
	int txt = 0;
	if (h != INVALID_HANDLE_VALUE) {
		do txt++; while (FindNextFileA(h, &fd));
		FindClose(h);
	}
	printf("*.txt matches %d\n", txt);
	h = FindFirstFileA("tree\\nothing*", &fd);
	err = GetLastError();
	printf("no match: %s, error %lu\n", h == INVALID_HANDLE_VALUE ? "invalid" : "valid", err);

	ok = RemoveDirectoryA("tree\\alpha");
	err = GetLastError();
	printf("RemoveDirectoryA on a full folder: %d, error %lu\n", ok, err);
	DeleteFileA("tree\\alpha\\deep\\two.h");
	DeleteFileA("tree\\alpha\\one.c");
	DeleteFileA("tree\\beta\\three.txt");
	DeleteFileA("tree\\zeta.txt");
	DeleteFileA("tree\\Eta.txt");
	DeleteFileA("tree\\b.dat");
	const char *order[] = {"tree\\alpha\\deep", "tree\\alpha", "tree\\beta", "tree"};
	printf("remove:");
	for (int i = 0; i < 4; i++)
		printf(" %d", RemoveDirectoryA(order[i]));
	printf("\n");
	printf("tree exists: %d\n", GetFileAttributesA("tree") != INVALID_FILE_ATTRIBUTES);
	return 0;
}
