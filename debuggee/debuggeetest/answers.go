package debuggeetest

import (
	"encoding/hex"
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/rsp"
)

// processViews are the qXfer objects of the process layer (and the
// backends' Linux views) that qSupported may advertise.
var processViews = []string{"libraries", "libraries-svr4", "exec-file", "auxv"}

// CheckAnswers checks, over a connected client with the target stopped,
// that every process view the stub advertises in qSupported gets a real
// answer (a non-empty object, no error), and that vFile, when it is
// dispatched at all, opens the file the stub names (the exec file or the
// first library). It returns what it found offered, in a fixed order:
// "qXfer:OBJECT" for each advertised view, then "vFile".
func CheckAnswers(t testing.TB, c *rsp.Client) []string {
	t.Helper()
	var offered []string
	var names []string // files the stub names, for vFile
	f := c.Features()
	for _, obj := range processViews {
		if f["qXfer:"+obj+":read"] != "+" {
			continue
		}
		offered = append(offered, "qXfer:"+obj)
		b, err := c.ReadXfer(obj, "")
		if !assert.NoError(t, err, "qXfer:%s:read is advertised", obj) || !assert.NotEmpty(t, b, "qXfer:%s:read is advertised", obj) {
			continue
		}
		switch obj {
		case "libraries":
			var doc struct {
				Libs []struct {
					Name string `xml:"name,attr"`
				} `xml:"library"`
			}
			require.NoError(t, xml.Unmarshal(b, &doc), "library list %s", b)
			if assert.NotEmpty(t, doc.Libs, "the library list names no module: %s", b) {
				names = append(names, doc.Libs[0].Name)
			}
		case "libraries-svr4":
			assert.Contains(t, string(b), "<library ", "the SVR4 list names no module: %s", b)
		case "exec-file":
			names = append([]string{string(b)}, names...)
		case "auxv":
			assert.Zero(t, len(b)%16, "auxv is (type, value) pairs of 8 bytes: %d bytes", len(b))
		}
	}
	if rep, err := c.Request("vFile:setfs:0"); err == nil && rep != "" {
		offered = append(offered, "vFile")
		if assert.NotEmpty(t, names, "vFile is dispatched but the stub names no file to read") {
			rep, err := c.Request("vFile:open:" + hex.EncodeToString([]byte(names[0])) + ",0,0")
			if assert.NoError(t, err) && assert.True(t, strings.HasPrefix(rep, "F") && !strings.HasPrefix(rep, "F-"), "vFile:open %s = %q", names[0], rep) {
				_, err := c.Request("vFile:close:" + strings.TrimPrefix(rep, "F"))
				assert.NoError(t, err)
			}
		}
	}
	return offered
}

// TIB asks qGetTIBAddr for thread tid: ok is false when the stub does
// not dispatch it (an empty reply).
func TIB(t testing.TB, c *rsp.Client, tid int) (addr string, ok bool, err error) {
	t.Helper()
	rep, err := c.Request("qGetTIBAddr:" + strconv.FormatInt(int64(tid), 16))
	if errors.Is(err, rsp.ErrUnsupported) {
		return "", false, nil
	}
	return rep, true, err
}
