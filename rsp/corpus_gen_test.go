package rsp

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/internal/fuzzcorpus"
)

// goldenPackets gives, for each packet kind of the golden transcripts
// (testdata/*.golden: what GDB 13, mingw GDB 13 and LLDB 14 send), the
// packets as those clients write them.
var goldenPackets = map[string][]string{
	"qSupported":                     {"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386", "qSupported:xmlRegisters=i386,arm,mips,arc;multiprocess+;fork-events+;vfork-events+"},
	"vMustReplyEmpty":                {"vMustReplyEmpty"},
	"QStartNoAckMode":                {"QStartNoAckMode"},
	"Hg":                             {"Hg0", "Hgp0.0", "Hg1"},
	"Hc":                             {"Hc-1", "Hc0"},
	"qXfer:features:read:target.xml": {"qXfer:features:read:target.xml:0,ffb", "qXfer:features:read:target.xml:ffb,ffb"},
	"qTStatus":                       {"qTStatus"},
	"?":                              {"?"},
	"qXfer:threads:read:":            {"qXfer:threads:read::0,ffb"},
	"qAttached":                      {"qAttached:1", "qAttached"},
	"qXfer:exec-file:read:":          {"qXfer:exec-file:read:1:0,ffb"},
	"qXfer:memory-map:read:":         {"qXfer:memory-map:read::0,ffb"},
	"qXfer:libraries:read:":          {"qXfer:libraries:read::0,ffb"},
	"m":                              {"m140001580,40", "m7ffe0000,8", "m0,1"},
	"x":                              {"x140001580,200", "x0,0"},
	"g":                              {"g"},
	"p":                              {"p10", "p10;thread:1;", "p39"},
	"P":                              {"P10=8015004001000000", "P0=0100000000000000;thread:1;"},
	"vCont?":                         {"vCont?"},
	"vCont;s":                        {"vCont;s:p1.1;c:p1.-1", "vCont;s:1"},
	"vCont;c":                        {"vCont;c:p1.-1", "vCont;c"},
	"Z":                              {"Z0,14000158f,1", "Z2,140004010,4", "Z1,140001590,1"},
	"z":                              {"z0,14000158f,1", "z2,140004010,4"},
	"c":                              {"c"},
	"D":                              {"D;1", "D"},
	"QEnableErrorStrings":            {"QEnableErrorStrings"},
	"QListThreadsInStopReply":        {"QListThreadsInStopReply"},
	"QThreadSuffixSupported":         {"QThreadSuffixSupported"},
	"jThreadExtendedInfo":            {"jThreadExtendedInfo:{\"thread\":1}"},
	"jThreadsInfo":                   {"jThreadsInfo"},
	"qGetTIBAddr":                    {"qGetTIBAddr:1"},
	"qHostInfo":                      {"qHostInfo"},
	"qMemoryRegionInfo":              {"qMemoryRegionInfo:140001000", "qMemoryRegionInfo:0"},
	"qProcessInfo":                   {"qProcessInfo"},
	"qRcmd":                          {"qRcmd,6274", "qRcmd,6d6f64756c6573", "qRcmd,74656220"},
	"qStructuredDataPlugins":         {"qStructuredDataPlugins"},
	"qVAttachOrWaitSupported":        {"qVAttachOrWaitSupported"},
	"vFile:setfs":                    {"vFile:setfs:0"},
	"vFile:open":                     {"vFile:open:433a5c727370737475625c64656d6f2e657865,0,0", "vFile:open:2f6574632f706173737764,0,0"},
	"vFile:pread":                    {"vFile:pread:0,3fff,0", "vFile:pread:0,3fff,4000"},
	"vFile:fstat":                    {"vFile:fstat:0"},
	"vFile:close":                    {"vFile:close:0"},
}

// transcriptPackets reads the golden transcripts and returns the packets
// their kinds stand for, in order, failing on a kind with no entry.
func transcriptPackets(t *testing.T) [][]string {
	files, _ := filepath.Glob("testdata/*.golden")
	if len(files) == 0 {
		t.Fatal("no golden transcripts")
	}
	var out [][]string
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var seq []string
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			kind := strings.TrimSpace(sc.Text())
			if kind == "" {
				continue
			}
			pk, ok := goldenPackets[kind]
			if !ok {
				t.Fatalf("%s: packet kind %q has no example in goldenPackets", p, kind)
			}
			seq = append(seq, pk...)
		}
		fh.Close()
		out = append(out, seq)
	}
	return out
}

func framed(p string) string { return string(hostileFrame([]byte(p))[1:]) }

// TestWriteFuzzCorpus regenerates testdata/fuzz/ when
// RSPSTUB_WRITE_CORPUS=1 (make fuzz-corpus): the packets of the golden
// transcripts for the decoder (framed, in sessions) and the handlers
// (one by one), real register dumps for the run-length encoder, and real
// stub replies (ours, QEMU's) for the client.
func TestWriteFuzzCorpus(t *testing.T) {
	if !fuzzcorpus.Enabled() {
		t.Skip("set RSPSTUB_WRITE_CORPUS=1 to regenerate the fuzz corpus")
	}
	set := fuzzcorpus.ResetSet(t, "FuzzDecoder", "FuzzHandlers", "FuzzCompressRuns", "FuzzClientReplies")
	add := set.Add
	seen := map[string]bool{}
	for _, seq := range transcriptPackets(t) {
		// Sessions as the decoder sees them: acks, then no-ack packets,
		// in slices of a few packets.
		for i := 0; i < len(seq); i += 6 {
			var ack, noAck bytes.Buffer
			for _, p := range seq[i:min(i+6, len(seq))] {
				ack.WriteString("+" + framed(p))
				noAck.WriteString(framed(p))
			}
			ack.WriteByte(0x03)
			add("FuzzDecoder", ack.Bytes(), false)
			add("FuzzDecoder", noAck.Bytes(), true)
		}
		for _, p := range seq {
			if !seen[p] {
				seen[p] = true
				add("FuzzHandlers", []byte(p))
			}
		}
	}
	// Register dumps as 'g' replies carry them: mostly zeros with a few
	// values, the case run-length encoding exists for.
	for _, d := range []*Description{AMD64(AMD64Options{}), AMD64(AMD64Options{AVX: true, System: true})} {
		var b strings.Builder
		for i, r := range d.Registers {
			v := make([]byte, r.Bits/8)
			if i < 18 {
				v[0], v[1] = byte(i*0x11), 0x40
			}
			fmt.Fprintf(&b, "%x", v)
		}
		add("FuzzCompressRuns", []byte(b.String()))
		add("FuzzClientReplies", []byte("PacketSize=47ff;QStartNoAckMode+;qXfer:features:read+;binary-upload+;swbreak+;hwbreak+;vContSupported+"),
			[]byte(TargetXML(d)), []byte(nil), []byte("T05swbreak:;thread:1;06:0000000000000000;07:f8ff0f0000000000;10:8f15004001000000;"), []byte(b.String()))
	}
	// QEMU 7.2's replies (qSupported and the i386-64bit.xml layout it
	// describes with an include).
	qemuXML := `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>i386:x86-64</architecture><xi:include href="i386-64bit.xml"/></target>`
	core := strings.Replace(TargetXML(AMD64(AMD64Options{System: true})), `<?xml version="1.0"?>`, "", 1)
	add("FuzzClientReplies", []byte("PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+"), []byte(qemuXML), []byte(core), []byte("T05thread:p01.01;"), []byte("00000000"))
	add("FuzzClientReplies", []byte("PacketSize=1000;qXfer:features:read+"), []byte(qemuXML), []byte(qemuXML), []byte("S05"), []byte("E14"))
	set.Log()
}
