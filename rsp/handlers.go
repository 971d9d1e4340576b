package rsp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
)

// Reply helpers: start locks the writer and begins a packet, end sends it.
// A handler does everything that can fail before start.

func (s *session) start() { s.c.wmu.Lock(); s.c.begin() }

func (s *session) end() error {
	err := s.c.send()
	if s.srv.logPackets {
		s.log.Debug("rsp ->", "packet", string(s.c.out))
	}
	s.c.wmu.Unlock()
	return err
}

func (s *session) reply(str string) error {
	s.start()
	s.c.putString(str)
	return s.end()
}

func (s *session) ok() error { return s.reply("OK") }

// threadList returns the live threads (thread 1 alone without a
// ThreadLister), in a reused buffer.
func (s *session) threadList() []ThreadInfo {
	if s.f.threads == nil {
		s.threads = append(s.threads[:0], ThreadInfo{ID: 1})
		return s.threads
	}
	s.threads = s.f.threads.Threads(s.threads[:0])
	return s.threads
}

func (s *session) firstThread() int {
	if s.f.threads == nil {
		return 1
	}
	if th := s.threadList(); len(th) > 0 {
		return th[0].ID
	}
	return 1
}

func (s *session) threadAlive(tid int) bool {
	if s.f.threads == nil {
		return tid == 1
	}
	for _, t := range s.threadList() {
		if t.ID == tid {
			return true
		}
	}
	return false
}

// resolve turns 0 / -1 / unset into a real thread.
func (s *session) resolve(tid int) int {
	if tid > 0 {
		return tid
	}
	if st := s.t.LastStop(); st.Thread > 0 {
		return st.Thread
	}
	return s.firstThread()
}

// threadSuffix strips LLDB's ";thread:TID;" suffix and returns the
// thread it names, or the Hg thread.
func (s *session) threadSuffixOf(args []byte) ([]byte, int, error) {
	tid := s.gThread
	if before, after, found := cut(args, ';'); found {
		if !hasPrefix(after, "thread:") {
			return nil, 0, errSyntax
		}
		id := after[len("thread:"):]
		if n := len(id); n > 0 && id[n-1] == ';' {
			id = id[:n-1]
		}
		t, ok := parseThreadID(id)
		if !ok {
			return nil, 0, errSyntax
		}
		args, tid = before, t
	}
	return args, s.resolve(tid), nil
}

// putThreadID writes a thread id: "p<pid>.<tid>" after the client asked
// for multiprocess+, else the bare hex id. GDB needs the pid in stop
// replies when it waits without a current thread (record full's
// stepping asserted "inf != NULL" on a bare id).
func (s *session) putThreadID(tid int) {
	if s.multiprocess {
		s.c.putByte('p')
		s.c.putUint(uint64(s.pid))
		s.c.putByte('.')
	}
	s.c.putUint(uint64(tid))
}

// targetErr wraps an error from the target for finish.
func targetErr(err error, code byte) error {
	if _, re := asWireError(err); re != nil {
		return err
	}
	return replyErr(code, err)
}

// ---- registers

func (s *session) handleg(args []byte) error {
	args, tid, err := s.threadSuffixOf(args)
	if err != nil {
		return err
	}
	if len(args) != 0 {
		return errSyntax
	}
	if err := s.t.ReadRegisters(tid, s.regs); err != nil {
		return targetErr(err, eFAULT)
	}
	s.start()
	s.c.putHex(s.regs)
	return s.end()
}

func (s *session) handleG(args []byte) error {
	args, tid, err := s.threadSuffixOf(args)
	if err != nil {
		return err
	}
	data, ok := decodeHexInPlace(args)
	if !ok || len(data) != len(s.regs) {
		return errSyntax
	}
	if err := s.t.WriteRegisters(tid, data); err != nil {
		return targetErr(err, eFAULT)
	}
	return s.ok()
}

func (s *session) register(num []byte) (*Register, int, error) {
	n, ok := parseHexFull(num)
	if !ok {
		return nil, 0, errSyntax
	}
	if n >= uint64(len(s.desc.Registers)) {
		return nil, 0, errBadReg
	}
	return &s.desc.Registers[n], int(n), nil
}

func (s *session) handlep(args []byte) error {
	args, tid, err := s.threadSuffixOf(args)
	if err != nil {
		return err
	}
	r, n, err := s.register(args)
	if err != nil {
		return err
	}
	buf := s.regs[r.Offset : r.Offset+r.Size()]
	if err := s.t.ReadRegister(tid, n, buf); err != nil {
		return targetErr(err, eFAULT)
	}
	s.start()
	s.c.putHex(buf)
	return s.end()
}

func (s *session) handleP(args []byte) error {
	args, tid, err := s.threadSuffixOf(args)
	if err != nil {
		return err
	}
	num, val, found := cut(args, '=')
	if !found {
		return errSyntax
	}
	r, n, err := s.register(num)
	if err != nil {
		return err
	}
	data, ok := decodeHexInPlace(val)
	if !ok || len(data) != r.Size() {
		return errSyntax
	}
	if err := s.t.WriteRegister(tid, n, data); err != nil {
		return targetErr(err, eFAULT)
	}
	return s.ok()
}

// ---- memory

// addrLen parses "ADDR,LEN" and returns the rest after it.
func addrLen(args []byte) (addr, length uint64, rest []byte, err error) {
	addr, rest, ok := parseHex(args)
	if !ok || len(rest) == 0 || rest[0] != ',' {
		return 0, 0, nil, errSyntax
	}
	length, rest, ok = parseHex(rest[1:])
	if !ok {
		return 0, 0, nil, errSyntax
	}
	return addr, length, rest, nil
}

// memReader is the target's memory from addr as a readFunc; it reads
// straight into the reply being built (codec.putRead, putHexRead).
type memReader struct {
	t    Target
	addr uint64
}

func (r *memReader) read(p []byte) (int, error) { return r.t.ReadMemory(r.addr, p) }

// view returns the n bytes at addr in place when the reply is binary and
// the target can show them all that way (MemoryViewer), else nil.
func (s *session) view(addr, n uint64, binary bool) []byte {
	if !binary || s.f.view == nil {
		return nil
	}
	if v := s.f.view.ViewMemory(addr, int(n)); len(v) == int(n) {
		return v
	}
	return nil
}

// readReply builds the reply to a memory read of up to n bytes at addr
// (n > 0): hex, or escaped binary after prefix. A read of nothing is
// errNoMemory, sent by the caller.
func (s *session) readReply(addr, n uint64, binary bool, prefix string) error {
	if addr+n < addr { // wraps: read up to the top of the space
		n = -addr
	}
	s.mr.t, s.mr.addr = s.t, addr
	s.start()
	s.c.putString(prefix)
	var got int
	if v := s.view(addr, n, binary); v != nil {
		got = s.c.putEscaped(v)
	} else if binary {
		got, _ = s.c.putRead(int(n), s.mrRead)
	} else {
		got, _ = s.c.putHexRead(int(n), s.mrRead)
	}
	if got == 0 {
		s.c.wmu.Unlock()
		return errNoMemory
	}
	return s.end()
}

func (s *session) handlem(args []byte) error {
	addr, n, rest, err := addrLen(args)
	if err != nil || len(rest) != 0 {
		return errSyntax
	}
	if n == 0 {
		return s.reply("")
	}
	// Hex doubles the size: cap at what fits one packet.
	return s.readReply(addr, min(n, uint64(s.c.maxSize/2)), false, "")
}

// handlex serves both binary-read dialects: LLDB's (raw data, "OK" for a
// zero-length probe) and GDB 16's ("b" + data, only after the client
// advertised binary-upload+).
func (s *session) handlex(args []byte) error {
	addr, n, rest, err := addrLen(args)
	if err != nil || len(rest) != 0 {
		return errSyntax
	}
	if n == 0 {
		if s.binaryUpload {
			return s.reply("b")
		}
		return s.ok()
	}
	prefix := ""
	if s.binaryUpload {
		prefix = "b"
	}
	return s.readReply(addr, min(n, uint64(s.c.maxSize)), true, prefix)
}

func (s *session) writeMem(addr uint64, data []byte) error {
	if len(data) == 0 {
		return s.ok()
	}
	n, err := s.t.WriteMemory(addr, data)
	if err != nil || n != len(data) {
		if err == nil {
			err = io.ErrShortWrite
		}
		return targetErr(err, eFAULT)
	}
	return s.ok()
}

func (s *session) handleM(args []byte) error {
	addr, n, rest, err := addrLen(args)
	if err != nil || len(rest) == 0 || rest[0] != ':' {
		return errSyntax
	}
	data, ok := decodeHexInPlace(rest[1:])
	if !ok || uint64(len(data)) != n {
		return errSyntax
	}
	return s.writeMem(addr, data)
}

func (s *session) handleX(args []byte) error {
	addr, n, rest, err := addrLen(args)
	if err != nil || len(rest) == 0 || rest[0] != ':' {
		return errSyntax
	}
	data := rest[1:]
	if uint64(len(data)) != n {
		return errSyntax
	}
	return s.writeMem(addr, data)
}

// ---- breakpoints

func (s *session) handleZ(args []byte) error {
	insert := s.c.pkt[0] == 'Z'
	if len(args) < 2 || args[1] != ',' {
		return errSyntax
	}
	k := args[0] - '0'
	if k > 4 {
		return errUnsupported
	}
	if !s.f.bpKinds[k] {
		return errUnsupported // an empty reply: "this kind is not supported"
	}
	addr, size, rest, err := addrLen(args[2:])
	if err != nil || size > 1<<20 {
		return errSyntax
	}
	if len(rest) > 0 && rest[0] != ';' {
		return errSyntax
	}
	nconds := 0
	if insert && k <= byte(BreakHardware) {
		// Target-side conditions (agent expressions, agent.go).
		if nconds, err = s.parseConditions(rest); err != nil {
			return err
		}
	}
	if insert {
		err = s.f.bp.InsertBreakpoint(BreakKind(k), addr, int(size))
	} else {
		err = s.f.bp.RemoveBreakpoint(BreakKind(k), addr, int(size))
	}
	if err != nil {
		return targetErr(err, eFAULT)
	}
	if k <= byte(BreakHardware) {
		if !insert {
			s.bps.remove(BreakKind(k), addr)
		} else if b := s.bps.insert(BreakKind(k), addr, int(size)); b == nil {
			s.f.bp.RemoveBreakpoint(BreakKind(k), addr, int(size))
			return errTooManyBreaks
		} else {
			for _, c := range s.conds[:nconds] {
				b.code = append(b.code, c...)
				b.ends = append(b.ends, len(b.code))
			}
		}
	}
	return s.ok()
}

// parseConditions decodes ";X<len>,<hex>..." (in place) into s.conds and
// returns how many there are. Anything after them (";cmds:...", which
// needs BreakpointCommands+, never advertised) is ignored.
func (s *session) parseConditions(rest []byte) (int, error) {
	n := 0
	for len(rest) > 1 && rest[0] == ';' && rest[1] == 'X' {
		field := rest[2:]
		end := indexByte(field, ';')
		if end < 0 {
			end = len(field)
		}
		rest = field[end:]
		lenField, hexField, found := cut(field[:end], ',')
		length, ok := parseHexFull(lenField)
		if !found || !ok || length == 0 || length > maxConditionLen || uint64(len(hexField)) != 2*length {
			return 0, errSyntax
		}
		code, ok := decodeHexInPlace(hexField)
		if !ok {
			return 0, errSyntax
		}
		if n >= maxConditions {
			return 0, errSyntax
		}
		s.conds[n] = code
		n++
	}
	return n, nil
}

// ---- threads

func (s *session) handleH(args []byte) error {
	if len(args) < 2 {
		return errSyntax
	}
	tid, ok := parseThreadID(args[1:])
	if !ok {
		return errSyntax
	}
	if tid > 0 && !s.threadAlive(tid) {
		return errNoThread
	}
	switch args[0] {
	case 'g':
		s.gThread = tid
	case 'c':
		s.cThread = tid
	default:
		return errSyntax
	}
	return s.ok()
}

func (s *session) handleT(args []byte) error {
	tid, ok := parseThreadID(args)
	if !ok {
		return errSyntax
	}
	if !s.threadAlive(tid) {
		return errNoThread
	}
	return s.ok()
}

func (s *session) handleqC(args []byte) error {
	s.start()
	s.c.putString("QC")
	s.putThreadID(s.resolve(0))
	return s.end()
}

// handleqfThreadInfo lists threads; long lists continue in qsThreadInfo.
func (s *session) handleqfThreadInfo(args []byte) error {
	s.tinfo = 0
	return s.handleqsThreadInfo(nil)
}

func (s *session) handleqsThreadInfo(args []byte) error {
	th := s.threadList()
	if s.tinfo >= len(th) {
		return s.reply("l")
	}
	s.start()
	s.c.putByte('m')
	first := s.tinfo
	for i := first; i < len(th); i++ {
		if i > first {
			if s.c.payloadLen() > s.c.maxSize-24 {
				break
			}
			s.c.putByte(',')
		}
		s.putThreadID(th[i].ID)
		s.tinfo = i + 1
	}
	return s.end()
}

func (s *session) handleqThreadExtraInfo(args []byte) error {
	tid, ok := parseThreadID(args)
	if !ok {
		return errSyntax
	}
	for _, t := range s.threadList() {
		if t.ID == tid {
			text := t.Extra
			if t.Name != "" && text != "" {
				text = t.Name + ", " + text
			} else if text == "" {
				text = t.Name
			}
			if len(text) > s.c.maxSize/2-1 {
				text = text[:s.c.maxSize/2-1]
			}
			s.start()
			s.c.putHexString(text)
			return s.end()
		}
	}
	return errNoThread
}

// ---- misc queries

func (s *session) handleQuestion(args []byte) error {
	return s.sendStop(s.t.LastStop())
}

func (s *session) handleqSupported(args []byte) error {
	// Client features: "name+", "name-", "name=value", separated by ';'.
	for len(args) > 0 {
		var f []byte
		f, args, _ = cut(args, ';')
		switch string(f) {
		case "swbreak+":
			s.swbreak = true
		case "hwbreak+":
			s.hwbreak = true
		case "binary-upload+":
			s.binaryUpload = true
		case "multiprocess+":
			s.multiprocess = true
		}
	}
	if s.multiprocess {
		s.pid = s.processInfo().PID
	}
	s.start()
	s.c.putString(s.srv.supported)
	if s.binaryUpload {
		s.c.putString(";binary-upload+")
	}
	if s.multiprocess {
		s.c.putString(";multiprocess+")
	}
	return s.end()
}

func (s *session) handleQStartNoAckMode(args []byte) error {
	// The OK still travels in ack mode; both sides switch after it.
	if err := s.ok(); err != nil {
		return err
	}
	s.c.noAck = true
	return nil
}

func (s *session) handleqAttached(args []byte) error {
	// "1": attached to an existing process, so quitting the debugger
	// detaches instead of killing the guest.
	return s.reply("1")
}

func (s *session) handleqSymbol(args []byte) error { return s.ok() }

func (s *session) handleqOffsets(args []byte) error {
	text, data, err := s.f.offsets.Offsets()
	if err != nil {
		return targetErr(err, ePERM)
	}
	s.start()
	s.c.putString("Text=")
	s.c.putUint(text)
	s.c.putString(";Data=")
	s.c.putUint(data)
	s.c.putString(";Bss=")
	s.c.putUint(data)
	return s.end()
}

func (s *session) handleqGetTIBAddr(args []byte) error {
	tid, ok := parseThreadID(args)
	if !ok {
		return errSyntax
	}
	addr, err := s.f.tib.TIBAddress(s.resolve(tid))
	if err != nil {
		return targetErr(err, eINVAL)
	}
	s.start()
	s.c.putUint(addr)
	return s.end()
}

func (s *session) handleqFileLoadAddress(args []byte) error {
	s.lldb = true
	name, ok := decodeHexInPlace(args)
	if !ok {
		return errSyntax
	}
	addr, err := s.f.fileLoad.FileLoadAddress(string(name))
	if err != nil {
		return targetErr(err, eNOENT)
	}
	s.start()
	s.c.putUint(addr)
	return s.end()
}

func (s *session) handleqMemoryRegionInfo(args []byte) error {
	addr, ok := parseHexFull(args)
	if !ok {
		return errSyntax
	}
	regions := s.f.mm.MemoryRegions(nil)
	// The gap below the first region at or above addr, or the region
	// holding addr.
	start, size := uint64(0), uint64(0)
	var hit *MemoryRegion
	for i := range regions {
		r := &regions[i]
		if addr >= r.Start && addr-r.Start < r.Size {
			hit = r
			break
		}
		if r.Start > addr {
			size = r.Start - start
			break
		}
		start = r.Start + r.Size
	}
	s.start()
	if hit != nil {
		s.c.putString("start:")
		s.c.putUint(hit.Start)
		s.c.putString(";size:")
		s.c.putUint(hit.Size)
		s.c.putString(";permissions:")
		if hit.Read {
			s.c.putByte('r')
		}
		if hit.Write {
			s.c.putByte('w')
		}
		if hit.Exec {
			s.c.putByte('x')
		}
		s.c.putByte(';')
		if hit.Name != "" {
			s.c.putString("name:")
			s.c.putHexString(hit.Name)
			s.c.putByte(';')
		}
	} else {
		if size == 0 { // past the last region: up to the top
			size = -start
		}
		s.c.putString("start:")
		s.c.putUint(start)
		s.c.putString(";size:")
		s.c.putUint(size)
		s.c.putByte(';')
	}
	return s.end()
}

// ---- LLDB

func (s *session) handleQThreadSuffixSupported(args []byte) error {
	s.lldb, s.threadSuffix = true, true
	return s.ok()
}

func (s *session) handleQListThreadsInStopReply(args []byte) error {
	s.lldb, s.listThreads = true, true
	return s.ok()
}

func (s *session) handleQEnableErrorStrings(args []byte) error {
	s.lldb, s.errorStrings = true, true
	return s.ok()
}

func (s *session) processInfo() ProcessInfo {
	var pi ProcessInfo
	if s.f.proc != nil {
		pi = s.f.proc.ProcessInfo()
	}
	if pi.Triple == "" {
		pi.Triple = "x86_64-unknown-unknown"
	}
	if pi.OSType == "" {
		pi.OSType = "unknown"
	}
	if pi.Vendor == "" {
		pi.Vendor = "unknown"
	}
	if pi.PID <= 0 {
		pi.PID = 1
	}
	return pi
}

func (s *session) handleqHostInfo(args []byte) error {
	s.lldb = true
	pi := s.processInfo()
	s.start()
	s.c.putString("triple:")
	s.c.putHexString(pi.Triple)
	s.c.putString(";ptrsize:8;endian:little;ostype:")
	s.c.putString(pi.OSType)
	s.c.putString(";vendor:")
	s.c.putString(pi.Vendor)
	s.c.putByte(';')
	return s.end()
}

func (s *session) handleqProcessInfo(args []byte) error {
	s.lldb = true
	pi := s.processInfo()
	s.start()
	s.c.putString("pid:")
	s.c.putUint(uint64(pi.PID))
	s.c.putString(";parent-pid:0;real-uid:0;real-gid:0;effective-uid:0;effective-gid:0;triple:")
	s.c.putHexString(pi.Triple)
	s.c.putString(";ostype:")
	s.c.putString(pi.OSType)
	s.c.putString(";vendor:")
	s.c.putString(pi.Vendor)
	s.c.putString(";endian:little;ptrsize:8;")
	return s.end()
}

// lldbEncoding is the encoding and format LLDB should use for r.
func lldbEncoding(r *Register) (encoding, format string) {
	switch {
	case r.Type == "vec128" || r.Type == "i387_ext" || r.Bits > 64:
		return "vector", "vector-uint8"
	case r.Type == "ieee_single" || r.Type == "ieee_double":
		return "ieee754", "float"
	}
	return "uint", "hex"
}

func lldbSet(r *Register) string {
	switch r.Group {
	case "float":
		return "Floating Point Registers"
	case "vector":
		return "Vector Registers"
	case "system":
		return "System Registers"
	}
	return "General Purpose Registers"
}

func (s *session) handleqRegisterInfo(args []byte) error {
	s.lldb = true
	n, ok := parseHexFull(args)
	if !ok {
		return errSyntax
	}
	if n >= uint64(len(s.desc.Registers)) {
		return replyErr(0x45, errBadReg) // LLDB's "no more registers"
	}
	r := &s.desc.Registers[n]
	enc, format := lldbEncoding(r)
	s.start()
	s.c.putString("name:")
	s.c.putString(r.Name)
	if r.AltName != "" {
		s.c.putString(";alt-name:")
		s.c.putString(r.AltName)
	}
	s.c.putString(";bitsize:")
	s.c.putDec(int64(r.Bits))
	s.c.putString(";offset:")
	s.c.putDec(int64(r.Offset))
	s.c.putString(";encoding:")
	s.c.putString(enc)
	s.c.putString(";format:")
	s.c.putString(format)
	s.c.putString(";set:")
	s.c.putString(lldbSet(r))
	s.c.putByte(';')
	if r.DWARF >= 0 {
		s.c.putString("ehframe:")
		s.c.putDec(int64(r.DWARF))
		s.c.putString(";dwarf:")
		s.c.putDec(int64(r.DWARF))
		s.c.putByte(';')
	}
	if r.Generic != "" {
		s.c.putString("generic:")
		s.c.putString(r.Generic)
		s.c.putByte(';')
	}
	return s.end()
}

// handlejThreadsInfo answers LLDB's JSON thread list, with the
// expedited registers of each thread.
func (s *session) handlejThreadsInfo(args []byte) error {
	s.lldb = true
	stop := s.t.LastStop()
	stopTID := s.resolve(stop.Thread)
	th := s.threadList()
	s.start()
	s.c.putByte('[')
	for i, t := range th {
		if i > 0 {
			s.c.putByte(',')
		}
		s.c.putString(`{"tid":`)
		s.c.putDec(int64(t.ID))
		if t.Name != "" {
			s.c.putString(`,"name":`)
			s.putJSONString(t.Name)
		}
		if t.ID == stopTID && stop.Kind <= StopAWatch {
			s.c.putString(`,"reason":"signal","signal":`)
			s.c.putDec(int64(stop.Signal))
		}
		s.c.putString(`,"registers":{`)
		first := true
		for _, rn := range [3]int{s.desc.PC, s.desc.SP, s.desc.FP} {
			if rn < 0 {
				continue
			}
			r := &s.desc.Registers[rn]
			buf := s.regs[r.Offset : r.Offset+r.Size()]
			if s.t.ReadRegister(t.ID, rn, buf) != nil {
				continue
			}
			if !first {
				s.c.putByte(',')
			}
			first = false
			s.c.putByte('"')
			s.c.putDec(int64(rn))
			s.c.putString(`":"`)
			s.c.putHex(buf)
			s.c.putByte('"')
		}
		s.c.putString("}}")
		if s.c.payloadLen() > s.c.maxSize*3 {
			break // a bounded reply even for huge thread counts
		}
	}
	s.c.putByte(']')
	return s.end()
}

func (s *session) putJSONString(v string) {
	s.c.putByte('"')
	for i := 0; i < len(v); i++ {
		b := v[i]
		switch {
		case b == '"' || b == '\\':
			s.c.putByte('\\')
			s.c.putByte(b)
		case b < 0x20:
			s.c.putString(`\u00`)
			s.c.putByte(hexdigits[b>>4])
			s.c.putByte(hexdigits[b&15])
		default:
			s.c.putByte(b)
		}
	}
	s.c.putByte('"')
}

// ---- monitor

func (s *session) handleqRcmd(args []byte) error {
	cmd, ok := decodeHexInPlace(args)
	if !ok {
		return errSyntax
	}
	if name, arg, _ := bytes.Cut(bytes.TrimSpace(cmd), []byte(" ")); string(name) == StubStatsCommand {
		if a := string(bytes.TrimSpace(arg)); a == "-gc" {
			runtime.GC()
		} else if a != "" {
			if err := s.sendO([]byte("usage: monitor stub-stats [-gc]\n")); err != nil {
				return err
			}
			return s.ok()
		}
		var b bytes.Buffer
		s.srv.Stats().WriteTo(&b)
		if err := s.sendO(b.Bytes()); err != nil {
			return err
		}
		return s.ok()
	}
	isHelp := string(bytes.TrimSpace(cmd)) == "help"
	if s.f.monitor == nil {
		if isHelp {
			if err := s.sendO([]byte(stubStatsHelp)); err != nil {
				return err
			}
			return s.ok()
		}
		return errUnsupported
	}
	s.console.mu.Lock()
	s.console.monitor = true
	s.console.mu.Unlock()
	var err error
	if s.f.tmonitor != nil {
		err = s.f.tmonitor.MonitorThread(s.resolve(s.gThread), string(cmd), &s.console)
	} else {
		err = s.f.monitor.Monitor(string(cmd), &s.console)
	}
	s.console.mu.Lock()
	ferr := s.console.flushMonitor()
	s.console.monitor = false
	s.console.mu.Unlock()
	if ferr != nil {
		return ferr
	}
	if err != nil {
		msg := err.Error()
		if len(msg) == 0 || msg[len(msg)-1] != '\n' {
			msg += "\n"
		}
		if werr := s.sendO([]byte(msg)); werr != nil {
			return werr
		}
		return targetErr(err, ePERM)
	}
	if isHelp {
		// The server's own command, after the target's list.
		if err := s.sendO([]byte(stubStatsHelp)); err != nil {
			return err
		}
	}
	return s.ok()
}

// stubStatsHelp is the line "monitor help" adds for the server's own
// command, in the monitor package's layout.
var stubStatsHelp = fmt.Sprintf("  %-46s %s\n", StubStatsCommand+" [-gc]",
	"the stub's own figures: goroutines, heap, packets, sessions, uptime, swallowed condition hits")

// handleQCatchSyscalls answers "QCatchSyscalls:1[;sysno...]" (catch
// these system calls, or all) and "QCatchSyscalls:0" (stop catching).
func (s *session) handleQCatchSyscalls(args []byte) error {
	if len(args) == 0 {
		return errSyntax
	}
	switch args[0] {
	case '0':
		if len(args) != 1 {
			return errSyntax
		}
		if err := s.f.syscalls.CatchSyscalls(false, nil); err != nil {
			return targetErr(err, ePERM)
		}
		return s.ok()
	case '1':
	default:
		return errSyntax
	}
	var nums []int
	for rest := args[1:]; len(rest) > 0; {
		if rest[0] != ';' || len(nums) >= 4096 {
			return errSyntax
		}
		rest = rest[1:]
		end := indexByte(rest, ';')
		if end < 0 {
			end = len(rest)
		}
		v, ok := parseHexFull(rest[:end])
		if !ok || v > 1<<31 {
			return errSyntax
		}
		nums = append(nums, int(v))
		rest = rest[end:]
	}
	if err := s.f.syscalls.CatchSyscalls(true, nums); err != nil {
		return targetErr(err, ePERM)
	}
	return s.ok()
}

// ---- memory allocation (LLDB)

// handle_M answers "_M<size>,<perms>" (perms: any of r, w, x) with the
// address of new guest memory.
func (s *session) handle_M(args []byte) error {
	sizeField, permField, found := cut(args, ',')
	size, ok := parseHexFull(sizeField)
	if !found || !ok || size == 0 {
		return errSyntax
	}
	var perm Perm
	for _, c := range permField {
		switch c {
		case 'r':
			perm |= PermRead
		case 'w':
			perm |= PermWrite
		case 'x':
			perm |= PermExec
		default:
			return errSyntax
		}
	}
	addr, err := s.f.alloc.AllocateMemory(size, perm)
	if err != nil {
		return targetErr(err, eNOSPC)
	}
	s.start()
	s.c.putUint(addr)
	return s.end()
}

// handle_m answers "_m<addr>": free what _M returned.
func (s *session) handle_m(args []byte) error {
	addr, ok := parseHexFull(args)
	if !ok {
		return errSyntax
	}
	if err := s.f.alloc.FreeMemory(addr); err != nil {
		return targetErr(err, eINVAL)
	}
	return s.ok()
}

// ---- lifecycle

func (s *session) handleD(args []byte) error {
	if err := s.ok(); err != nil {
		return err
	}
	s.endReason = "detach"
	return errEndSession
}

func (s *session) handlek(args []byte) error {
	if err := s.f.kill.Kill(); err != nil {
		s.log.Warn("kill failed", "err", err)
	}
	if s.extended {
		// Extended mode: no reply (GDB does not read one), and the
		// session stays for a vRun.
		return nil
	}
	s.killed = true
	// GDB does not wait for an answer to k; LLDB waits for an exit stop.
	s.reply("X09")
	return errEndSession
}

func (s *session) handlevKill(args []byte) error {
	if err := s.f.kill.Kill(); err != nil {
		return targetErr(err, ePERM)
	}
	if s.extended {
		return s.ok()
	}
	s.killed = true
	s.ok()
	return errEndSession
}

// ---- extended mode: restart

// handleBang enters extended mode.
func (s *session) handleBang(args []byte) error {
	s.extended = true
	s.srv.mu.Lock()
	s.srv.extended = true
	s.srv.mu.Unlock()
	return s.ok()
}

// handlevRun answers "vRun;hex(program)[;hex(arg)...]" with the first
// stop of a fresh guest. The program is always the one the target was
// made with (GDB sends an empty name unless `set remote exec-file` was
// used); arguments, when given, replace the previous ones.
func (s *session) handlevRun(args []byte) error {
	if !s.extended {
		return replyErr(ePERM, errors.New("vRun needs extended mode (target extended-remote)"))
	}
	var argv []string
	for i := 0; len(args) > 0; i++ {
		var field []byte
		field, args, _ = cut(args, ';')
		b, ok := decodeHexInPlace(field)
		if !ok {
			return errSyntax
		}
		if i == 0 {
			if len(b) > 0 {
				s.log.Debug("vRun names a program; the stub runs its own", "program", string(b))
			}
			continue
		}
		argv = append(argv, string(b))
	}
	stop, err := s.restart(argv)
	if err != nil {
		return err
	}
	return s.sendStop(stop)
}

// handleR restarts without a reply (extended mode only).
func (s *session) handleR(args []byte) error {
	if !s.extended {
		return errUnsupported
	}
	if _, err := s.restart(nil); err != nil {
		s.log.Warn("restart failed", "err", err)
	}
	return nil
}

// restart replaces the guest and forgets the session state that belonged
// to the old one.
func (s *session) restart(args []string) (Stop, error) {
	stop, err := s.f.restart.Restart(args)
	if err != nil {
		return Stop{}, targetErr(err, ePERM)
	}
	s.held = nil
	s.xferKey = ""
	s.gThread, s.cThread = 0, 0
	return stop, nil
}

// ---- vFile (host I/O), restricted to the files the target serves

// GDB's File-I/O errno values.
const (
	fioENOENT = 2
	fioEBADF  = 9
	fioEACCES = 13
	fioEINVAL = 22
	fioEMFILE = 24
	fioEIO    = 5
)

func fileErr(errno int, err error) error { return &fileError{errno: errno, err: err} }

func (s *session) handlevFile(args []byte) error {
	op, rest, found := cut(args, ':')
	if !found {
		return errSyntax
	}
	switch string(op) {
	case "setfs":
		// Every file the target serves lives in one namespace.
		return s.reply("F0")
	case "open":
		return s.vFileOpen(rest)
	case "pread":
		return s.vFilePread(rest)
	case "fstat":
		return s.vFileFstat(rest)
	case "close":
		fd, ok := parseHexFull(rest)
		if !ok || fd >= maxOpenFiles || s.files[fd] == nil {
			return fileErr(fioEBADF, nil)
		}
		s.files[fd].Close()
		s.files[fd] = nil
		return s.reply("F0")
	case "pwrite", "unlink", "readlink":
		return fileErr(fioEACCES, errors.New("read-only file service"))
	}
	return errUnsupported
}

func (s *session) vFileOpen(args []byte) error {
	hexName, rest, found := cut(args, ',')
	if !found {
		return errSyntax
	}
	flagsField, _, _ := cut(rest, ',')
	flags, ok := parseHexFull(flagsField)
	if !ok {
		return errSyntax
	}
	name, ok := decodeHexInPlace(hexName)
	if !ok {
		return errSyntax
	}
	if flags&3 != 0 { // O_WRONLY or O_RDWR
		return fileErr(fioEACCES, errors.New("read-only file service"))
	}
	fd := -1
	for i, f := range s.files {
		if f == nil {
			fd = i
			break
		}
	}
	if fd < 0 {
		return fileErr(fioEMFILE, nil)
	}
	f, err := s.f.files.OpenFile(string(name))
	if errors.Is(err, fs.ErrNotExist) && bytes.IndexByte(name, '/') >= 0 && bytes.IndexByte(name, '\\') < 0 {
		// GDB for Windows turns the library list's "C:\dir\x.dll" into
		// "C:/dir/x.dll" before it asks; try the name as listed.
		for i, b := range name {
			if b == '/' {
				name[i] = '\\'
			}
		}
		f, err = s.f.files.OpenFile(string(name))
	}
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fileErr(fioENOENT, err)
		case errors.Is(err, fs.ErrPermission):
			return fileErr(fioEACCES, err)
		}
		return fileErr(fioEIO, err)
	}
	s.files[fd] = f
	s.start()
	s.c.putByte('F')
	s.c.putUint(uint64(fd))
	return s.end()
}

func (s *session) vFilePread(args []byte) error {
	fdField, rest, _ := cut(args, ',')
	cntField, offField, _ := cut(rest, ',')
	fd, ok1 := parseHexFull(fdField)
	cnt, ok2 := parseHexFull(cntField)
	off, ok3 := parseHexFull(offField)
	if !ok1 || !ok2 || !ok3 || off > 1<<62 {
		return fileErr(fioEINVAL, nil)
	}
	if fd >= maxOpenFiles || s.files[fd] == nil {
		return fileErr(fioEBADF, nil)
	}
	// Binary data may double when escaped; keep the reply near the
	// packet size.
	cnt = min(cnt, uint64(s.c.maxSize/2))
	buf := s.mem[:cnt]
	n, err := s.files[fd].ReadAt(buf, int64(off))
	if n == 0 && err != nil && err != io.EOF {
		return fileErr(fioEIO, err)
	}
	s.start()
	s.c.putByte('F')
	s.c.putUint(uint64(n))
	s.c.putByte(';')
	s.c.putBytes(buf[:n])
	return s.end()
}

// vFileFstat answers with GDB's struct stat: 64 bytes, big-endian.
//
//	0 dev u32 | 4 ino u32 | 8 mode u32 | 12 nlink u32 | 16 uid u32
//	20 gid u32 | 24 rdev u32 | 28 size u64 | 36 blksize u64
//	44 blocks u64 | 52 atime u32 | 56 mtime u32 | 60 ctime u32
func (s *session) vFileFstat(args []byte) error {
	fd, ok := parseHexFull(args)
	if !ok || fd >= maxOpenFiles || s.files[fd] == nil {
		return fileErr(fioEBADF, nil)
	}
	size := s.files[fd].Size()
	var st [64]byte
	binary.BigEndian.PutUint32(st[8:], 0o100444) // regular file, read-only
	binary.BigEndian.PutUint32(st[12:], 1)
	binary.BigEndian.PutUint64(st[28:], uint64(size))
	binary.BigEndian.PutUint64(st[36:], 4096)
	binary.BigEndian.PutUint64(st[44:], uint64(size+511)/512)
	s.start()
	s.c.putString("F40;")
	s.c.putBytes(st[:])
	return s.end()
}
