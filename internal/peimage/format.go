package peimage

import (
	"errors"
	"fmt"
)

// Constants from the PE specification, with debug/pe's names.
const (
	IMAGE_FILE_MACHINE_I386  = 0x14c
	IMAGE_FILE_MACHINE_AMD64 = 0x8664

	IMAGE_FILE_RELOCS_STRIPPED = 0x0001
	IMAGE_FILE_DLL             = 0x2000

	IMAGE_NT_OPTIONAL_HDR32_MAGIC = 0x10b
	IMAGE_NT_OPTIONAL_HDR64_MAGIC = 0x20b

	IMAGE_DIRECTORY_ENTRY_EXPORT    = 0
	IMAGE_DIRECTORY_ENTRY_IMPORT    = 1
	IMAGE_DIRECTORY_ENTRY_EXCEPTION = 3
	IMAGE_DIRECTORY_ENTRY_DEBUG     = 6
	IMAGE_DIRECTORY_ENTRY_BASERELOC = 5
	IMAGE_DIRECTORY_ENTRY_TLS       = 9
	IMAGE_DIRECTORY_ENTRY_COM       = 14

	IMAGE_SCN_CNT_CODE               = 0x00000020
	IMAGE_SCN_CNT_INITIALIZED_DATA   = 0x00000040
	IMAGE_SCN_CNT_UNINITIALIZED_DATA = 0x00000080
	IMAGE_SCN_MEM_SHARED             = 0x10000000
	IMAGE_SCN_MEM_EXECUTE            = 0x20000000
	IMAGE_SCN_MEM_READ               = 0x40000000
	IMAGE_SCN_MEM_WRITE              = 0x80000000

	IMAGE_REL_BASED_ABSOLUTE = 0
	IMAGE_REL_BASED_HIGHLOW  = 3
	IMAGE_REL_BASED_DIR64    = 10

	IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE = 0x0040
	IMAGE_SUBSYSTEM_WINDOWS_GUI           = 2
	IMAGE_SUBSYSTEM_WINDOWS_CUI           = 3

	// IMAGE_ORDINAL_FLAG64 marks an import by ordinal in a PE32+ thunk.
	IMAGE_ORDINAL_FLAG64 = 1 << 63
)

// Sizes and limits.
const (
	// MaxImageSize bounds SizeOfImage; Windows refuses far smaller
	// images than this already.
	MaxImageSize = 1 << 30
	// MaxNTHeaderOffset bounds e_lfanew.
	MaxNTHeaderOffset = 1 << 20
	// MaxSections is the PE specification's limit on NumberOfSections.
	MaxSections = 96

	dosHeaderSize        = 0x40
	lfanewOffset         = 0x3c
	fileHeaderSize       = 20
	optionalHeader32Size = 224
	optionalHeader64Size = 240
	sectionHeaderSize    = 40
	exportDirectorySize  = 40
	importDescriptorSize = 20
	pageSize             = 0x1000
)

var (
	// ErrNotPE means the bytes do not start with a DOS header pointing at
	// a PE signature and a known optional header.
	ErrNotPE = errors.New("not a PE image")
	// ErrNotPE32Plus means a PE image that is not a PE32+ (64-bit) one.
	ErrNotPE32Plus = errors.New("not a PE32+ image")
	// ErrNoRelocations: the image has no base relocations and cannot move.
	ErrNoRelocations = errors.New("image has no base relocations")
)

// FormatError is a malformed image: what and where.
type FormatError struct {
	Off uint64 // file or RVA offset of the bad field
	Msg string
}

func (e *FormatError) Error() string { return fmt.Sprintf("corrupt PE image at %#x: %s", e.Off, e.Msg) }

// FileHeader is the COFF file header that follows "PE\0\0".
type FileHeader struct {
	Machine              uint16
	NumberOfSections     uint16
	TimeDateStamp        uint32
	PointerToSymbolTable uint32
	NumberOfSymbols      uint32
	SizeOfOptionalHeader uint16
	Characteristics      uint16
}

// DataDirectory is one entry of the optional header's directory table.
type DataDirectory struct {
	VirtualAddress uint32
	Size           uint32
}

// OptionalHeader32 is the PE32 optional header.
type OptionalHeader32 struct {
	Magic                       uint16
	MajorLinkerVersion          uint8
	MinorLinkerVersion          uint8
	SizeOfCode                  uint32
	SizeOfInitializedData       uint32
	SizeOfUninitializedData     uint32
	AddressOfEntryPoint         uint32
	BaseOfCode                  uint32
	BaseOfData                  uint32
	ImageBase                   uint32
	SectionAlignment            uint32
	FileAlignment               uint32
	MajorOperatingSystemVersion uint16
	MinorOperatingSystemVersion uint16
	MajorImageVersion           uint16
	MinorImageVersion           uint16
	MajorSubsystemVersion       uint16
	MinorSubsystemVersion       uint16
	Win32VersionValue           uint32
	SizeOfImage                 uint32
	SizeOfHeaders               uint32
	CheckSum                    uint32
	Subsystem                   uint16
	DllCharacteristics          uint16
	SizeOfStackReserve          uint32
	SizeOfStackCommit           uint32
	SizeOfHeapReserve           uint32
	SizeOfHeapCommit            uint32
	LoaderFlags                 uint32
	NumberOfRvaAndSizes         uint32
	DataDirectory               [16]DataDirectory
}

// OptionalHeader64 is the PE32+ optional header.
type OptionalHeader64 struct {
	Magic                       uint16
	MajorLinkerVersion          uint8
	MinorLinkerVersion          uint8
	SizeOfCode                  uint32
	SizeOfInitializedData       uint32
	SizeOfUninitializedData     uint32
	AddressOfEntryPoint         uint32
	BaseOfCode                  uint32
	ImageBase                   uint64
	SectionAlignment            uint32
	FileAlignment               uint32
	MajorOperatingSystemVersion uint16
	MinorOperatingSystemVersion uint16
	MajorImageVersion           uint16
	MinorImageVersion           uint16
	MajorSubsystemVersion       uint16
	MinorSubsystemVersion       uint16
	Win32VersionValue           uint32
	SizeOfImage                 uint32
	SizeOfHeaders               uint32
	CheckSum                    uint32
	Subsystem                   uint16
	DllCharacteristics          uint16
	SizeOfStackReserve          uint64
	SizeOfStackCommit           uint64
	SizeOfHeapReserve           uint64
	SizeOfHeapCommit            uint64
	LoaderFlags                 uint32
	NumberOfRvaAndSizes         uint32
	DataDirectory               [16]DataDirectory
}

// widen turns a PE32 header into the PE32+ layout File keeps.
func (h *OptionalHeader32) widen() OptionalHeader64 {
	return OptionalHeader64{
		Magic: h.Magic, MajorLinkerVersion: h.MajorLinkerVersion, MinorLinkerVersion: h.MinorLinkerVersion,
		SizeOfCode: h.SizeOfCode, SizeOfInitializedData: h.SizeOfInitializedData,
		SizeOfUninitializedData: h.SizeOfUninitializedData, AddressOfEntryPoint: h.AddressOfEntryPoint,
		BaseOfCode: h.BaseOfCode, ImageBase: uint64(h.ImageBase),
		SectionAlignment: h.SectionAlignment, FileAlignment: h.FileAlignment,
		MajorOperatingSystemVersion: h.MajorOperatingSystemVersion, MinorOperatingSystemVersion: h.MinorOperatingSystemVersion,
		MajorImageVersion: h.MajorImageVersion, MinorImageVersion: h.MinorImageVersion,
		MajorSubsystemVersion: h.MajorSubsystemVersion, MinorSubsystemVersion: h.MinorSubsystemVersion,
		Win32VersionValue: h.Win32VersionValue, SizeOfImage: h.SizeOfImage, SizeOfHeaders: h.SizeOfHeaders,
		CheckSum: h.CheckSum, Subsystem: h.Subsystem, DllCharacteristics: h.DllCharacteristics,
		SizeOfStackReserve: uint64(h.SizeOfStackReserve), SizeOfStackCommit: uint64(h.SizeOfStackCommit),
		SizeOfHeapReserve: uint64(h.SizeOfHeapReserve), SizeOfHeapCommit: uint64(h.SizeOfHeapCommit),
		LoaderFlags: h.LoaderFlags, NumberOfRvaAndSizes: h.NumberOfRvaAndSizes, DataDirectory: h.DataDirectory,
	}
}

// SectionHeader32 is a section header as stored (40 bytes).
type SectionHeader32 struct {
	Name                 [8]uint8
	VirtualSize          uint32
	VirtualAddress       uint32
	SizeOfRawData        uint32
	PointerToRawData     uint32
	PointerToRelocations uint32
	PointerToLineNumbers uint32
	NumberOfRelocations  uint16
	NumberOfLineNumbers  uint16
	Characteristics      uint32
}

// Section is one section header with its name decoded: the eight-byte
// field up to its first NUL, or for a file with a COFF string table, the
// long name a "/N" (or "//base64") field points at.
type Section struct {
	Name string
	SectionHeader32
}

// MemSize is how many bytes the section occupies in memory.
func (s *Section) MemSize() uint32 {
	if s.VirtualSize != 0 {
		return s.VirtualSize
	}
	return s.SizeOfRawData
}
