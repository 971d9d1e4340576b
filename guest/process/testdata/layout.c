/* Compile-time check of rspstub's structure offsets against the mingw-w64
   headers. The test passes -DOFF_...=value for each of package process's constants:
   x86_64-w64-mingw32-gcc -fsyntax-only -DOFF_TEB_PEB=0x60 ... layout.c */
#include <windows.h>
#include <winternl.h>
#include <stddef.h>

#define CHECK(expr, want) _Static_assert((expr) == (want), #expr)

CHECK(offsetof(NT_TIB, ExceptionList), OFF_TEB_EXCEPTIONLIST);
CHECK(offsetof(NT_TIB, StackBase), OFF_TEB_STACKBASE);
CHECK(offsetof(NT_TIB, StackLimit), OFF_TEB_STACKLIMIT);
CHECK(offsetof(NT_TIB, Self), OFF_TEB_SELF);
CHECK(offsetof(TEB, ProcessEnvironmentBlock), OFF_TEB_PEB);
CHECK(offsetof(TEB, TlsSlots), OFF_TEB_TLSSLOTS);
CHECK(offsetof(TEB, TlsExpansionSlots), OFF_TEB_TLSEXPANSION);
CHECK(offsetof(PEB, Ldr), OFF_PEB_LDR);
CHECK(offsetof(PEB, ProcessParameters), OFF_PEB_PARAMS);
CHECK(offsetof(PEB, BeingDebugged), OFF_PEB_BEINGDEBUGGED);
CHECK(offsetof(PEB_LDR_DATA, InMemoryOrderModuleList), OFF_LDR_INMEMORYORDER);
CHECK(offsetof(LDR_DATA_TABLE_ENTRY, InMemoryOrderLinks), OFF_LTE_INMEMORYORDER);
CHECK(offsetof(LDR_DATA_TABLE_ENTRY, DllBase), OFF_LTE_DLLBASE);
CHECK(offsetof(LDR_DATA_TABLE_ENTRY, FullDllName), OFF_LTE_FULLDLLNAME);
CHECK(offsetof(LDR_DATA_TABLE_ENTRY, TimeDateStamp), OFF_LTE_TIMEDATESTAMP);
CHECK(offsetof(RTL_USER_PROCESS_PARAMETERS, ImagePathName), OFF_RPP_IMAGEPATHNAME);
CHECK(offsetof(RTL_USER_PROCESS_PARAMETERS, CommandLine), OFF_RPP_COMMANDLINE);
CHECK(offsetof(UNICODE_STRING, Buffer), 8);
CHECK(sizeof(UNICODE_STRING), 16);
CHECK(sizeof(LIST_ENTRY), 16);
CHECK(sizeof(CRITICAL_SECTION), 40);
CHECK(sizeof(MEMORY_BASIC_INFORMATION), 48);
CHECK(offsetof(MEMORY_BASIC_INFORMATION, RegionSize), 24);
CHECK(offsetof(MEMORY_BASIC_INFORMATION, State), 32);
CHECK(sizeof(SYSTEM_INFO), 48);
CHECK(sizeof(STARTUPINFOA), 104);
CHECK(offsetof(STARTUPINFOA, hStdInput), 0x50);
CHECK(offsetof(IMAGE_TLS_DIRECTORY64, AddressOfCallBacks), 24);
CHECK(sizeof(RUNTIME_FUNCTION), 12);
