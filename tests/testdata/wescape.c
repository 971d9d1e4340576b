/* A guest that tries to leave its sandboxed C: every way it can; each
   attempt must fail. Prints one line per attempt: "name: denied" or
   "name: OPENED".  x86_64-w64-mingw32-gcc -O1 wescape.c */
#include <stdio.h>
#include <windows.h>
#include <winternl.h>

typedef NTSTATUS(NTAPI *create_file_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER,
					ULONG, ULONG, ULONG, ULONG, PVOID, ULONG);
static create_file_fn pNtCreateFile;

static void try_path(const char *label, const char *path) {
	HANDLE h = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
	printf("%s: %s\n", label, h == INVALID_HANDLE_VALUE ? "denied" : "OPENED");
	if (h != INVALID_HANDLE_VALUE)
		CloseHandle(h);
}

static void try_write(const char *label, const char *path) {
	HANDLE h = CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
	printf("%s: %s\n", label, h == INVALID_HANDLE_VALUE ? "denied" : "OPENED");
	if (h != INVALID_HANDLE_VALUE)
		CloseHandle(h);
}

static void try_nt(const char *label, HANDLE root, const wchar_t *name) {
	UNICODE_STRING us;
	OBJECT_ATTRIBUTES oa;
	IO_STATUS_BLOCK io;
	HANDLE h;
	us.Buffer = (PWSTR)name;
	us.Length = us.MaximumLength = (USHORT)(wcslen(name) * sizeof(wchar_t));
	InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, root, NULL);
	NTSTATUS st = pNtCreateFile(&h, GENERIC_READ | SYNCHRONIZE, &oa, &io, NULL, 0, FILE_SHARE_READ, FILE_OPEN,
				   FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
	printf("%s: %s\n", label, st ? "denied" : "OPENED");
	if (!st)
		CloseHandle(h);
}

int main(void) {
	pNtCreateFile = (create_file_fn)GetProcAddress(GetModuleHandleA("ntdll.dll"), "NtCreateFile");
	try_path("other drive", "Z:\\etc\\passwd");
	try_path("dotdot", "C:\\..\\..\\..\\..\\etc\\passwd");
	try_path("system32 dotdot", "C:\\windows\\system32\\..\\..\\..\\..\\..\\etc\\passwd");
	try_path("device path", "\\\\?\\C:\\..\\..\\etc\\passwd");
	try_path("unc", "\\\\localhost\\c$\\etc\\passwd");
	try_path("physical drive", "\\\\.\\PhysicalDrive0");
	try_path("symlink in root", "C:\\hostlink\\passwd");
	try_path("program folder dotdot", "C:\\rspstub\\..\\..\\etc\\passwd");
	try_write("write to program folder", "C:\\rspstub\\planted.exe");
	try_write("write to system32 dll", "C:\\windows\\system32\\kernel32.dll");
	try_nt("nt dotdot", NULL, L"\\??\\C:\\..\\..\\etc\\passwd");
	try_nt("nt device", NULL, L"\\Device\\HarddiskVolume1\\etc\\passwd");
	try_nt("nt unix", NULL, L"\\??\\unix\\etc\\passwd");
	HANDLE root = CreateFileA("C:\\", GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
	try_nt("nt relative dotdot", root, L"..\\..\\etc\\passwd");
	try_nt("nt relative absolute", root, L"\\etc\\passwd");
	CloseHandle(root);
	try_write("allowed write", "C:\\inside.txt");
	return 0;
}
