// Package winproc finds a Windows x64 process's modules from guest memory
// only: no emulator, no cgo, no knowledge of who loaded the images. It
// serves every backend that can read guest memory: the QEMU backend
// (a Windows VM seen through QEMU's gdbstub) and the monitor's "peb"
// command over the Unicorn guest, which builds the same structures.
//
// # From the registers to the TEB
//
// Windows x64 keeps the current thread's TEB in the GS segment base
// while user code runs (gs:[0x30] is TEB.NtTib.Self). The kernel swaps
// GS on entry with swapgs, which exchanges IA32_GS_BASE with
// IA32_KERNEL_GS_BASE (0xC0000102, QEMU's k_gs_base): in kernel mode
// gs_base holds the processor's KPCR and k_gs_base holds the user GS,
// that is the TEB of the thread that entered the kernel. So FindTEB
// takes the CPL from CS's low two bits and
//
//   - CPL 3 (user): tries gs_base, then k_gs_base;
//   - CPL 0 (kernel): tries k_gs_base, then gs_base (the first
//     instructions of an entry path run before swapgs, and a stop there
//     still has the TEB in gs_base).
//
// A candidate is accepted only when it is non-zero, canonical, readable
// and TEB.Self (+0x30) holds its own address; a KPCR fails that test
// (its self pointer is at +0x18). The first
// candidate that passes wins; when none does, the error names both
// values and why each was refused ("gs_base 0", "unmapped", "Self is
// 0x..."), which is what "monitor teb" shows.
//
// # From the TEB to the modules
//
//	TEB  +0x30 Self          PEB  +0x10 ImageBaseAddress
//	     +0x60 PEB                +0x18 Ldr ──▶ PEB_LDR_DATA +0x10 InLoadOrderModuleList (LIST_ENTRY head)
//
//	LDR_DATA_TABLE_ENTRY (the list links are its first field)
//	     +0x00 InLoadOrderLinks {Flink, Blink}
//	     +0x30 DllBase
//	     +0x40 SizeOfImage (ULONG)
//	     +0x48 FullDllName  UNICODE_STRING {Length, MaximumLength, pad, Buffer}
//	     +0x58 BaseDllName  UNICODE_STRING
//
// The walk trusts nothing: at most MaxModules entries, every entry
// address remembered (a Flink back to an earlier entry is a loop), names
// at most MaxNameBytes, an image size between one page and MaxImageSize,
// a base that is page-aligned and does not wrap. What cannot be used is
// not an error but a Problem with the address involved; the walk keeps
// the good entries and goes on when the links are still readable. Only
// a TEB or PEB that cannot be read at all makes the whole walk fail.
//
// # Without a loader list
//
// ScanImage looks backwards from a PC, page by page (images are page
// aligned) up to a bounded distance, for a PE32+ x64 header whose image
// covers the PC: "MZ", e_lfanew inside the first page, "PE\0\0",
// Machine 0x8664, optional header magic 0x20b, SizeOfImage (headers read by
// internal/peimage, the project's one PE reader). The module
// is named by its export directory's Name when it has one (DLLs do),
// else "image@BASE". Unreadable pages are skipped, not fatal: a paged-out
// page of a real VM reads as unmapped.
//
// Merge puts modules the user named (--module FILE@BASE) over the
// discovered ones: a user module replaces every discovered module it
// overlaps.
package winproc
