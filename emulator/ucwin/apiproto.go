package ucwin

import (
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/rspstub/rspstub/guest"
)

// param is one parameter of a prototype: its name and how its value is
// shown: d (32-bit unsigned), i (32-bit signed), u (64-bit unsigned, a
// size), s (char *), w (wchar_t *), b (a buffer, its length the next
// argument), x (hex: handles, pointers, flags).
type param struct {
	name string
	kind byte
}

// protoSource lists the prototypes of the functions programs call most,
// by name (the DLL does not matter): NAME kind:param ...
var protoSource = `
ExitProcess d:uExitCode
ExitThread d:dwExitCode
TerminateProcess x:hProcess d:uExitCode
CreateFileA s:lpFileName x:dwDesiredAccess x:dwShareMode x:lpSecurityAttributes d:dwCreationDisposition x:dwFlagsAndAttributes x:hTemplateFile
CreateFileW w:lpFileName x:dwDesiredAccess x:dwShareMode x:lpSecurityAttributes d:dwCreationDisposition x:dwFlagsAndAttributes x:hTemplateFile
ReadFile x:hFile x:lpBuffer d:nNumberOfBytesToRead x:lpNumberOfBytesRead x:lpOverlapped
WriteFile x:hFile b:lpBuffer d:nNumberOfBytesToWrite x:lpNumberOfBytesWritten x:lpOverlapped
WriteConsoleA x:hConsoleOutput b:lpBuffer d:nNumberOfCharsToWrite x:lpNumberOfCharsWritten x:lpReserved
WriteConsoleW x:hConsoleOutput x:lpBuffer d:nNumberOfCharsToWrite x:lpNumberOfCharsWritten x:lpReserved
CloseHandle x:hObject
DeleteFileA s:lpFileName
DeleteFileW w:lpFileName
GetFileAttributesA s:lpFileName
GetFileAttributesW w:lpFileName
CreateDirectoryA s:lpPathName x:lpSecurityAttributes
CreateDirectoryW w:lpPathName x:lpSecurityAttributes
FindFirstFileA s:lpFileName x:lpFindFileData
FindFirstFileW w:lpFileName x:lpFindFileData
GetStdHandle i:nStdHandle
LoadLibraryA s:lpLibFileName
LoadLibraryW w:lpLibFileName
LoadLibraryExA s:lpLibFileName x:hFile x:dwFlags
LoadLibraryExW w:lpLibFileName x:hFile x:dwFlags
FreeLibrary x:hLibModule
GetModuleHandleA s:lpModuleName
GetModuleHandleW w:lpModuleName
GetModuleFileNameA x:hModule x:lpFilename d:nSize
GetModuleFileNameW x:hModule x:lpFilename d:nSize
GetProcAddress x:hModule s:lpProcName
VirtualAlloc x:lpAddress u:dwSize x:flAllocationType x:flProtect
VirtualFree x:lpAddress u:dwSize x:dwFreeType
VirtualProtect x:lpAddress u:dwSize x:flNewProtect x:lpflOldProtect
VirtualQuery x:lpAddress x:lpBuffer u:dwLength
HeapAlloc x:hHeap x:dwFlags u:dwBytes
HeapReAlloc x:hHeap x:dwFlags x:lpMem u:dwBytes
HeapFree x:hHeap x:dwFlags x:lpMem
Sleep d:dwMilliseconds
SleepEx d:dwMilliseconds d:bAlertable
CreateThread x:lpThreadAttributes u:dwStackSize x:lpStartAddress x:lpParameter x:dwCreationFlags x:lpThreadId
WaitForSingleObject x:hHandle d:dwMilliseconds
CreateEventA x:lpEventAttributes d:bManualReset d:bInitialState s:lpName
CreateEventW x:lpEventAttributes d:bManualReset d:bInitialState w:lpName
CreateMutexA x:lpMutexAttributes d:bInitialOwner s:lpName
CreateMutexW x:lpMutexAttributes d:bInitialOwner w:lpName
SetEvent x:hEvent
GetLastError
SetLastError d:dwErrCode
GetCurrentProcess
GetCurrentThread
GetCurrentProcessId
GetCurrentThreadId
GetTickCount
GetTickCount64
QueryPerformanceCounter x:lpPerformanceCount
GetEnvironmentVariableA s:lpName x:lpBuffer d:nSize
GetEnvironmentVariableW w:lpName x:lpBuffer d:nSize
SetEnvironmentVariableA s:lpName s:lpValue
SetEnvironmentVariableW w:lpName w:lpValue
OutputDebugStringA s:lpOutputString
OutputDebugStringW w:lpOutputString
MessageBoxA x:hWnd s:lpText s:lpCaption x:uType
MessageBoxW x:hWnd w:lpText w:lpCaption x:uType
RegOpenKeyExA x:hKey s:lpSubKey x:ulOptions x:samDesired x:phkResult
RegOpenKeyExW x:hKey w:lpSubKey x:ulOptions x:samDesired x:phkResult
RegQueryValueExA x:hKey s:lpValueName x:lpReserved x:lpType x:lpData x:lpcbData
RegQueryValueExW x:hKey w:lpValueName x:lpReserved x:lpType x:lpData x:lpcbData
RegCloseKey x:hKey
RaiseException x:dwExceptionCode x:dwExceptionFlags d:nNumberOfArguments x:lpArguments
puts s:str
printf s:format x:a1 x:a2 x:a3
wprintf w:format x:a1 x:a2 x:a3
fprintf x:stream s:format x:a1 x:a2
sprintf x:buffer s:format x:a1 x:a2
snprintf x:buffer u:count s:format x:a1
vfprintf x:stream s:format x:argptr
fputs s:str x:stream
fputc i:c x:stream
putchar i:c
fwrite b:buffer u:size u:count x:stream
fread x:buffer u:size u:count x:stream
fopen s:filename s:mode
_wfopen w:filename w:mode
fclose x:stream
fflush x:stream
malloc u:size
calloc u:number u:size
realloc x:memblock u:size
free x:memblock
strlen s:str
wcslen w:str
strcmp s:string1 s:string2
strncmp s:string1 s:string2 u:count
strcpy x:dest s:src
strcat x:dest s:src
strchr s:str i:c
strstr s:str s:strSearch
memcpy x:dest x:src u:count
memmove x:dest x:src u:count
memset x:dest i:c u:count
memcmp x:buffer1 x:buffer2 u:count
atoi s:str
strtol s:str x:endptr i:base
getenv s:varname
system s:command
exit i:status
_exit i:status
abort
signal i:sig x:func
qsort x:base u:number u:width x:compare
__getmainargs x:argc x:argv x:env i:doWildCard x:startInfo
_initterm x:first x:last
`

var prototypes = func() map[string][]param {
	out := map[string][]param{}
	for _, line := range strings.Split(protoSource, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		ps := []param{}
		for _, p := range f[1:] {
			k, n, _ := strings.Cut(p, ":")
			ps = append(ps, param{name: n, kind: k[0]})
		}
		out[strings.ToLower(f[0])] = ps
	}
	return out
}()

// genericParams are shown for functions the table lacks: the four
// register arguments.
var genericParams = []param{{"a0", 'x'}, {"a1", 'x'}, {"a2", 'x'}, {"a3", 'x'}}

// paramsOf is fn's prototype: from the table, or as many hex arguments
// as the synthesized userland's export tables give it (guest.Arity), or
// genericParams.
func paramsOf(fn string) []param {
	if ps, ok := prototypes[strings.ToLower(fn)]; ok {
		return ps
	}
	n, ok := guest.Arity(fn)
	if !ok {
		return genericParams
	}
	ps := make([]param, n)
	for i := range ps {
		ps[i] = param{"a" + strconv.Itoa(i), 'x'}
	}
	return ps
}

func utf16Decode(u []uint16) []rune { return utf16.Decode(u) }
