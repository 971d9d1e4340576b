package wine

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// The standard handles. A host pipe, file or /dev/null makes a stream of
// the same kind, as when a program runs under wine with its output
// redirected: GetFileType tells which, console functions fail on it and
// the C runtimes fall back to WriteFile.
//
// A host terminal ("tty") makes a console, as Wine's conhost gives a
// program started from a terminal: the handles are \Device\ConDrv input
// and output objects and the process parameters name a console
// (ConsoleHandle), so kernelbase's console functions work. They reach
// the kernel as NtDeviceIoControlFile with the IOCTL_CONDRV_* codes of
// Wine's condrv.h, served by consoleIoctl:
//
//   - modes, code pages (437 and 437 by default, as Wine's OEM code page
//     for en-US), the title, the screen buffer's geometry and colours;
//   - WriteConsoleW text goes to the stub's output as UTF-8, bytes
//     written with WriteFile or WriteConsoleA are converted from the
//     output code page, "\r\n" becomes the terminal's "\n"; a colour change (SetConsoleTextAttribute) becomes
//     an ANSI escape sequence, as Wine's conhost writes on a terminal;
//   - ReadConsole and ReadFile read a line of the stub's input, with the
//     line end Windows gives ("\r\n"), in UTF-16 or the input code page;
//   - requests about the screen buffer's contents (ReadConsoleOutput,
//     FillConsoleOutputCharacter, scrolling) succeed without a screen to
//     change, and no input events are queued (PeekConsoleInput sees none).

// console is the state of the process's console.
type console struct {
	in       *bufio.Reader
	inMode   uint32
	outMode  uint32
	inCP     uint32
	outCP    uint32
	attr     uint16
	title    string
	width    int16
	height   int16
	pendingW []uint16 // the rest of a line ReadConsoleW could not take
	pendingA []byte   // the rest of a line ReadFile could not take
}

// Console modes (wincon.h) and defaults (those of Wine's conhost).
const (
	consoleInputModeDefault  = 0x1f7 // processed, line, echo, mouse, insert, quick edit, extended, auto position
	consoleOutputModeDefault = 0x3   // processed output, wrap at end of line
	consoleDefaultAttr       = 0x7   // light grey on black
	consoleDefaultCP         = 437
)

// Roles of console objects: the console itself (params.ConsoleHandle and
// the connection kernelbase opens under it), an input and a screen buffer.
const (
	conRoot = iota
	conInput
	conOutput
)

// Console I/O control codes: CTL_CODE(FILE_DEVICE_CONSOLE, fn,
// METHOD_BUFFERED, access), condrv.h.
func condrvCode(fn, access uint32) uint32 { return FILE_DEVICE_CONSOLE<<16 | access<<14 | fn<<2 }

var (
	ioctlGetMode                   = condrvCode(0, 1)
	ioctlSetMode                   = condrvCode(1, 2)
	ioctlIsUnix                    = condrvCode(2, 0)
	ioctlReadConsole               = condrvCode(10, 1)
	ioctlReadFile                  = condrvCode(11, 1)
	ioctlReadInput                 = condrvCode(12, 1)
	ioctlWriteInput                = condrvCode(13, 2)
	ioctlPeek                      = condrvCode(14, 1)
	ioctlGetInputInfo              = condrvCode(15, 1)
	ioctlSetInputInfo              = condrvCode(16, 2)
	ioctlGetTitle                  = condrvCode(17, 1)
	ioctlSetTitle                  = condrvCode(18, 2)
	ioctlCtrlEvent                 = condrvCode(19, 0)
	ioctlBeep                      = condrvCode(20, 0)
	ioctlFlush                     = condrvCode(21, 0)
	ioctlGetWindow                 = condrvCode(22, 0)
	ioctlGetProcessList            = condrvCode(23, 0)
	ioctlReadConsoleControl        = condrvCode(24, 1)
	ioctlWriteConsole              = condrvCode(30, 2)
	ioctlWriteFile                 = condrvCode(31, 2)
	ioctlReadOutput                = condrvCode(32, 1)
	ioctlWriteOutput               = condrvCode(33, 2)
	ioctlGetOutputInfo             = condrvCode(34, 1)
	ioctlSetOutputInfo             = condrvCode(35, 2)
	ioctlActivate                  = condrvCode(36, 2)
	ioctlFillOutput                = condrvCode(37, 2)
	ioctlScroll                    = condrvCode(38, 2)
	ioctlBindPID                   = condrvCode(51, 0)
	setOutputInfoAttr       uint32 = 0x0008
	setInputInfoInCP        uint32 = 0x01
	setInputInfoOutCP       uint32 = 0x02
)

func (p *Process) makeStdHandles() error {
	kind := func(i int) string {
		switch k := p.cfg.StdioKinds[i]; k {
		case "file", "char", "nul", "tty":
			return k
		}
		return "pipe"
	}
	ins := [3]io.Reader{p.cfg.Stdin, eofReader{}, eofReader{}}
	outs := [3]io.Writer{p.cfg.Stdout, p.cfg.Stdout, p.cfg.Stderr}
	for i := range p.stdStreams {
		k := kind(i)
		if k == "tty" {
			if p.con == nil {
				p.con = newConsole(p.cfg.Stdin, p.cfg.ConsoleSize)
			}
			role := conOutput
			if i == 0 {
				role = conInput
			}
			p.stdStreams[i] = &stream{kind: "console", con: p.con, role: role, r: ins[i], w: outs[i]}
			continue
		}
		p.stdStreams[i] = &stream{kind: k, r: ins[i], w: outs[i]}
	}
	for i, s := range p.stdStreams {
		name := [...]string{"<stdin>", "<stdout>", "<stderr>"}[i]
		access := uint32(GENERIC_READ | 0x100000)
		if i > 0 {
			access = GENERIC_WRITE | 0x100000
		}
		h := p.handles.add(&fileObject{guestPath: name, stream: s, access: access, options: FILE_SYNCHRONOUS_IO_NONALERT}, access)
		p.std[i] = h
	}
	if p.con != nil {
		s := &stream{kind: "console", con: p.con, role: conRoot, r: eofReader{}, w: io.Discard}
		p.consoleHandle = p.handles.add(&fileObject{guestPath: `\Device\ConDrv\Reference`, stream: s, access: GENERIC_READ | GENERIC_WRITE}, GENERIC_READ|GENERIC_WRITE)
	}
	return nil
}

func newConsole(in io.Reader, size [2]int) *console {
	w, h := int16(80), int16(25)
	if size[0] > 0 && size[0] < 0x7fff && size[1] > 0 && size[1] < 0x7fff {
		w, h = int16(size[0]), int16(size[1])
	}
	if in == nil {
		in = eofReader{}
	}
	return &console{in: bufio.NewReader(in), inMode: consoleInputModeDefault, outMode: consoleOutputModeDefault,
		inCP: consoleDefaultCP, outCP: consoleDefaultCP, attr: consoleDefaultAttr, width: w, height: h}
}

// openConsole opens a \Device\ConDrv object (or CONIN$, CONOUT$) for a
// process that has a console; without one there is nothing to open.
func (p *Process) openConsole(r resolved) (*stream, ntstatus) {
	if p.con == nil {
		return nil, STATUS_INVALID_HANDLE // what wine answers without a console
	}
	role := conRoot
	switch name := strings.ToLower(r.guest); {
	case r.device == "conin" || strings.HasSuffix(name, `\input`) || strings.HasSuffix(name, `\currentin`):
		role = conInput
	case r.device == "conout" || strings.HasSuffix(name, `\output`) || strings.HasSuffix(name, `\currentout`) ||
		strings.HasSuffix(name, `\screenbuffer`):
		role = conOutput
	case strings.HasSuffix(name, `\connection`) || strings.HasSuffix(name, `\reference`) || strings.HasSuffix(name, `\server`):
	default:
		return nil, STATUS_OBJECT_NAME_NOT_FOUND
	}
	s := &stream{kind: "console", con: p.con, role: role, r: eofReader{}, w: io.Discard}
	switch role {
	case conInput:
		s.r = p.cfg.Stdin
	case conOutput:
		s.w = p.cfg.Stdout
	}
	return s, STATUS_SUCCESS
}

// codePage returns the encoding of a console code page (nil: UTF-8 or
// one this console does not convert, whose bytes pass unchanged).
func codePage(cp uint32) encoding.Encoding {
	switch cp {
	case 437:
		return charmap.CodePage437
	case 850:
		return charmap.CodePage850
	case 1252:
		return charmap.Windows1252
	case 28591:
		return charmap.ISO8859_1
	}
	return nil
}

// writeText writes UTF-16 text to w (a screen buffer's host stream) as
// UTF-8.
func (con *console) writeText(w io.Writer, u []uint16) error {
	_, err := w.Write(ttyLineEnds([]byte(string(utf16.Decode(u)))))
	return err
}

// ttyLineEnds turns Windows line ends into a terminal's: the terminal
// adds the carriage return itself.
func ttyLineEnds(b []byte) []byte {
	if !bytes.Contains(b, []byte("\r\n")) {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}

// writeBytes writes bytes in the output code page to w.
func (con *console) writeBytes(w io.Writer, b []byte) error {
	if e := codePage(con.outCP); e != nil {
		if s, err := e.NewDecoder().Bytes(b); err == nil {
			b = s
		}
	}
	_, err := w.Write(ttyLineEnds(b))
	return err
}

// readLine reads one line of input with the Windows line end, or what
// is left of the previous one.
func (con *console) readLine() (string, bool) {
	line, err := con.in.ReadString('\n')
	if line == "" && err != nil {
		return "", false
	}
	if strings.HasSuffix(line, "\n") && !strings.HasSuffix(line, "\r\n") {
		line = line[:len(line)-1] + "\r\n"
	}
	return line, true
}

// readText reads up to max UTF-16 units of input.
func (con *console) readText(max int) ([]uint16, bool) {
	if len(con.pendingW) == 0 {
		line, ok := con.readLine()
		if !ok {
			return nil, false
		}
		con.pendingW = utf16.Encode([]rune(line))
	}
	n := min(max, len(con.pendingW))
	u := con.pendingW[:n]
	con.pendingW = con.pendingW[n:]
	return u, true
}

// readBytes reads up to max bytes of input in the input code page.
func (con *console) readBytes(max int) ([]byte, bool) {
	if len(con.pendingA) == 0 {
		line, ok := con.readLine()
		if !ok {
			return nil, false
		}
		b := []byte(line)
		if e := codePage(con.inCP); e != nil {
			if s, err := encoding.ReplaceUnsupported(e.NewEncoder()).Bytes(b); err == nil {
				b = s
			}
		}
		con.pendingA = b
	}
	n := min(max, len(con.pendingA))
	b := con.pendingA[:n]
	con.pendingA = con.pendingA[n:]
	return b, true
}

// setAttr changes the text attribute, writing the ANSI escape sequence
// for the new colours to w.
func (con *console) setAttr(w io.Writer, a uint16) {
	if a == con.attr {
		return
	}
	con.attr = a
	if a == consoleDefaultAttr {
		io.WriteString(w, "\x1b[0m")
		return
	}
	// Windows colours are IRGB with blue in bit 0; ANSI's are RGB with
	// red in bit 0.
	ansi := func(c uint16) int { return int(c&4>>2 | c&2 | c&1<<2) }
	fg, bg := a&0xf, a>>4&0xf
	fgCode, bgCode := 30+ansi(fg), 40+ansi(bg)
	if fg&8 != 0 {
		fgCode += 60
	}
	if bg&8 != 0 {
		bgCode += 60
	}
	fmt.Fprintf(w, "\x1b[0;%d;%dm", fgCode, bgCode)
}

// outputInfo is a condrv_output_info (100 bytes).
func (con *console) outputInfo() []byte {
	b := make(memw, 100)
	w, h := con.width, con.height
	for i, v := range []int16{
		25, 1, // cursor size (percent), visible
		0, 0, // cursor position
		w, h, // buffer size
		int16(con.attr), 0xf5, // attributes, pop-up attributes
		0, 0, w - 1, h - 1, // window
		w, h, // maximum window size
		8, 16, 400, 0x30, // font width, height, weight, pitch and family
	} {
		b.u16(2*i, uint16(v))
	}
	for i, c := range []uint32{0x000000, 0x800000, 0x008000, 0x808000, 0x000080, 0x800080, 0x008080, 0xc0c0c0,
		0x808080, 0xff0000, 0x00ff00, 0xffff00, 0x0000ff, 0xff00ff, 0x00ffff, 0xffffff} {
		b.u32(36+4*i, c)
	}
	return b
}

// consoleIoctl serves IOCTL_CONDRV_* requests on a console object
// (NtDeviceIoControlFile: iosb arg 4, code 5, in 6/7, out 8/9).
func (p *Process) consoleIoctl(c *call, f *fileObject) ntstatus {
	s, con := f.stream, f.stream.con
	if con == nil {
		return STATUS_INVALID_HANDLE
	}
	code, in, inLen, out, outLen := c.arg32(5), c.arg(6), c.arg32(7), c.arg(8), c.arg32(9)
	if inLen > maxIO || outLen > maxIO {
		return STATUS_INVALID_PARAMETER
	}
	input := func() []byte {
		if inLen == 0 {
			return nil
		}
		return c.bytes(in, int(inLen))
	}
	var reply []byte
	switch code {
	case ioctlGetMode:
		mode := con.outMode
		if s.role == conInput {
			mode = con.inMode
		}
		reply = binary.LittleEndian.AppendUint32(nil, mode)
	case ioctlSetMode:
		b := input()
		if len(b) < 4 {
			return STATUS_INVALID_PARAMETER
		}
		if s.role == conInput {
			con.inMode = binary.LittleEndian.Uint32(b)
		} else {
			con.outMode = binary.LittleEndian.Uint32(b)
		}
	case ioctlGetInputInfo:
		reply = make(memw, 12)
		memw(reply).u32(0, con.inCP)
		memw(reply).u32(4, con.outCP)
	case ioctlSetInputInfo:
		b := input()
		if len(b) < 16 {
			return STATUS_INVALID_PARAMETER
		}
		mask := binary.LittleEndian.Uint32(b)
		if mask&setInputInfoInCP != 0 {
			con.inCP = binary.LittleEndian.Uint32(b[4:])
		}
		if mask&setInputInfoOutCP != 0 {
			con.outCP = binary.LittleEndian.Uint32(b[8:])
		}
	case ioctlGetOutputInfo:
		reply = con.outputInfo()
	case ioctlSetOutputInfo:
		b := input()
		if len(b) < 4+100 {
			return STATUS_INVALID_PARAMETER
		}
		if binary.LittleEndian.Uint32(b)&setOutputInfoAttr != 0 {
			con.setAttr(s.w, binary.LittleEndian.Uint16(b[4+12:]))
		}
	case ioctlWriteConsole:
		b := input()
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		if err := con.writeText(s.w, u); err != nil {
			return STATUS_PIPE_BROKEN
		}
	case ioctlWriteFile:
		if err := con.writeBytes(s.w, input()); err != nil {
			return STATUS_PIPE_BROKEN
		}
	case ioctlReadConsole, ioctlReadConsoleControl:
		skip := 0
		if code == ioctlReadConsoleControl {
			skip = 4 // the control key state comes first
		}
		if outLen < uint32(skip)+2 {
			return STATUS_INVALID_PARAMETER
		}
		u, ok := con.readText(int(outLen-uint32(skip)) / 2)
		if !ok {
			// End of input: ReadConsole returns no characters.
			u = nil
		}
		reply = make([]byte, skip+2*len(u))
		for i, v := range u {
			binary.LittleEndian.PutUint16(reply[skip+2*i:], v)
		}
	case ioctlReadFile:
		b, _ := con.readBytes(int(outLen))
		reply = b
	case ioctlGetTitle:
		// condrv_title_params: the title's length, then as much of it as
		// fits; the reply's size counts the structure's 8 bytes (its
		// padding included) before the text, as Wine's conhost does.
		if outLen < 8 {
			return STATUS_INVALID_PARAMETER
		}
		u := utf16.Encode([]rune(con.title))
		n := min(len(u), int(outLen-8)/2)
		reply = make(memw, 8+2*n)
		memw(reply).u32(0, uint32(len(u)))
		for i, v := range u[:n] {
			memw(reply).u16(4+2*i, v)
		}
	case ioctlSetTitle:
		b := input()
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		con.title = string(utf16.Decode(u))
	case ioctlGetProcessList:
		if outLen < 4 {
			c.put32(out, 1) // the count needed
			c.iosb(c.arg(4), STATUS_BUFFER_TOO_SMALL, 0)
			return STATUS_BUFFER_TOO_SMALL
		}
		reply = binary.LittleEndian.AppendUint32(nil, pid)
	case ioctlReadOutput:
		// No screen contents: blanks in the default colours.
		reply = bytes.Repeat([]byte{' ', 0, consoleDefaultAttr, 0}, int(outLen)/4)
	case ioctlFillOutput:
		b := input()
		if len(b) < 16 {
			return STATUS_INVALID_PARAMETER
		}
		reply = binary.LittleEndian.AppendUint32(nil, binary.LittleEndian.Uint32(b[12:]))
	case ioctlWriteOutput:
		reply = binary.LittleEndian.AppendUint32(nil, 0)
	case ioctlReadInput, ioctlPeek, ioctlWriteInput, ioctlGetWindow, ioctlIsUnix,
		ioctlCtrlEvent, ioctlFlush, ioctlScroll, ioctlActivate, ioctlBindPID:
		// No input events, no window; the rest change nothing to show.
	case ioctlBeep:
		io.WriteString(s.w, "\a")
	default:
		c.note("unknown console request")
		return STATUS_INVALID_PARAMETER
	}
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	if uint32(len(reply)) > outLen {
		return STATUS_BUFFER_TOO_SMALL
	}
	if len(reply) > 0 {
		c.putBytes(out, reply)
	}
	c.iosb(c.arg(4), STATUS_SUCCESS, uint64(len(reply)))
	return STATUS_SUCCESS
}
