package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rspstub/rspstub/unwind/check"
)

// Exit codes of rspstub check-unwind.
const (
	checkAgree      = 0 // no unexplained disagreement
	checkDisagree   = 1 // some disagreement has no known explanation
	checkBadInput   = 2 // bad command line, unreadable file or not a PE32+ image
	maxCheckFileLen = 1 << 30
)

const checkUsageText = `Usage: rspstub check-unwind [--json] [-n N] FILE...

For every function of each PE32+ FILE that has both a .pdata entry and a
DWARF CFI FDE (.debug_frame or .eh_frame), compares at every instruction
what the two say: the CFA (the caller's RSP), where the return address
is, and where each callee-saved register (rbx, rbp, rsi, rdi, r12-r15,
xmm6-xmm15) is restored from. Each disagreement is classified, and the
instruction bytes decide which side is right where they can. Prints per
file the functions and positions compared, agreements, disagreements by
category, and the first N disagreements.

Exit status: 0 no unexplained disagreement, 1 some, 2 bad input.

Flags:
`

// checkOutput is the JSON object check-unwind --json prints.
type checkOutput struct {
	Files  []*check.Result `json:"files"`
	Failed []checkFailure  `json:"failed,omitempty"`
	Total  *check.Result   `json:"total"`
}

type checkFailure struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

func checkUnwindCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-unwind", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object on stdout")
	examples := fs.Int("n", 10, "show the first N disagreements per file (unexplained first; 0: none)")
	fs.Usage = func() {
		fmt.Fprint(stderr, checkUsageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return checkAgree
		}
		return checkBadInput
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return checkBadInput
	}
	opts := check.Options{Examples: *examples}
	if *examples <= 0 {
		opts.Examples = -1
	}
	var out checkOutput
	status := checkAgree
	for _, path := range fs.Args() {
		res, err := checkFile(path, opts)
		if err != nil {
			out.Failed = append(out.Failed, checkFailure{File: path, Error: err.Error()})
			if !*asJSON {
				fmt.Fprintf(stderr, "rspstub check-unwind: %s: %v\n", path, err)
			}
			status = checkBadInput
			continue
		}
		out.Files = append(out.Files, res)
		if res.Unexplained > 0 && status == checkAgree {
			status = checkDisagree
		}
		if !*asJSON {
			printCheck(stdout, res)
		}
	}
	out.Total = check.Total(out.Files)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(&out); err != nil {
			fmt.Fprintf(stderr, "rspstub check-unwind: %v\n", err)
			return checkBadInput
		}
	} else if len(out.Files) > 1 {
		fmt.Fprintf(stdout, "TOTAL (%d files)\n", len(out.Files))
		printCounts(stdout, out.Total)
	}
	return status
}

func checkFile(path string, opts check.Options) (*check.Result, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxCheckFileLen {
		return nil, fmt.Errorf("not a regular file of at most %d bytes", maxCheckFileLen)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	res, err := check.Check(b, opts)
	if err != nil {
		return nil, err
	}
	res.File = path
	return res, nil
}

func printCheck(w io.Writer, r *check.Result) {
	fmt.Fprintf(w, "%s (image base %#x)\n", r.File, r.ImageBase)
	printCounts(w, r)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  CFI error: %s\n", e)
	}
	if len(r.Examples) > 0 {
		fmt.Fprintf(w, "  first disagreements:\n")
	}
	for _, d := range r.Examples {
		tag := "explained"
		if !d.Explained {
			tag = "UNEXPLAINED"
		}
		fmt.Fprintf(w, "    function rva %#x +%#x (rva %#x) %s: %s, %s\n", d.FunctionRVA, d.Offset, d.RVA, d.Instruction, d.Category, tag)
		fmt.Fprintf(w, "      pdata: %s\n", sideText(d.Pdata))
		fmt.Fprintf(w, "      cfi:   %s\n", sideText(d.CFI))
		fmt.Fprintf(w, "      code:  cfa=%s\n", d.Code)
		for _, s := range d.Details {
			fmt.Fprintf(w, "      %s\n", s)
		}
	}
}

func printCounts(w io.Writer, r *check.Result) {
	fmt.Fprintf(w, "  .pdata entries %d, FDEs %d, functions with both %d\n", r.PdataFunctions, r.FDEs, r.Functions)
	fmt.Fprintf(w, "  positions compared %d: %d agree, %d disagree (%d unexplained)\n", r.Positions, r.Agreements, r.Disagreements, r.Unexplained)
	if r.PdataOnlyPositions > 0 || r.DecodeStops > 0 {
		fmt.Fprintf(w, "  not compared: %d positions outside every FDE; %d functions stop decoding early\n", r.PdataOnlyPositions, r.DecodeStops)
	}
	for _, c := range r.Categories {
		tag := "explained"
		if !c.Explained {
			tag = "UNEXPLAINED"
		}
		fmt.Fprintf(w, "    %-26s %8d  %-11s %s\n", c.Category, c.Count, tag, c.Reason)
	}
}

func sideText(s check.Side) string {
	if s.Error != "" {
		return "error: " + s.Error
	}
	t := "cfa=" + s.CFA
	if s.RA != "" {
		t += " ra=" + s.RA
	}
	if s.Note != "" {
		t += " (" + s.Note + ")"
	}
	if len(s.Saved) > 0 {
		t += "; " + strings.Join(s.Saved, ", ")
	}
	return t
}
