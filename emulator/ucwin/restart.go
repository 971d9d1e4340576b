package ucwin

import (
	"fmt"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/guest"
	"github.com/rspstub/rspstub/guest/minidump"
	"github.com/rspstub/rspstub/guest/wine"
	"github.com/rspstub/rspstub/rsp"
)

// Restart implements rsp.Restarter: the program starts again in a new
// machine and guest built from the same Config (with new arguments when
// args is not nil), and the client's breakpoints are inserted there. The
// old guest is closed once the new one is up; if the new one fails to
// load, the old one stays.
func (t *Target) Restart(args []string) (rsp.Stop, error) {
	cfg := t.cfg
	if args != nil {
		cfg.Args = args
	}
	t.foldCoverage()
	old := t.guest()
	t.setGuest(guestState{})
	// A recording (Config.Record) starts anew with the new run: its
	// positions, snapshots and checkpoints were the old run's.
	oldRec := t.rec
	if oldRec != nil {
		t.rec = newRecorder(&cfg)
	}
	if err := t.load(cfg); err != nil {
		t.setGuest(old)
		t.rec = oldRec
		return rsp.Stop{}, fmt.Errorf("restart %s: %w", cfg.Program, err)
	}
	if t.rec != nil {
		t.rec.start = t.m.Position()
	}
	if t.wine != nil && t.stopOnLoad {
		t.loadGen = t.wine.ModuleGeneration()
	}
	t.generation++
	for k := range t.breaks {
		if err := t.insert(k.kind, k.addr, k.size); err != nil {
			// Same program, same layout: only a breakpoint in memory
			// the old run mapped later can fail; the client inserts its
			// breakpoints again before it resumes anyway.
			delete(t.breaks, k)
		}
	}
	t.installHooks()
	old.close()
	if err := t.startCoverage(); err != nil {
		return rsp.Stop{}, err
	}
	return t.last, nil
}

// guestState is what belongs to one run of the program: every field of
// Target that Restart replaces. (A field added to Target that belongs to
// a run must be added here too.)
type guestState struct {
	m         *unicorn.Machine
	mw        *machine
	proc      *guest.Process
	desc      *rsp.Description
	ctx       unicorn.Context
	last      rsp.Stop
	exited    bool
	libsSent  int
	wine      *wine.Process
	deliver   bool
	pending   *wine.Exception
	final     *rsp.Stop
	loadGen   uint64
	shadows   map[uint32][]unicorn.ShadowFrame
	fault     *wine.Exception
	faultDump *minidump.Dump
	delivered *wine.Exception
	// A replay's state (timetravel.go), idle between requests.
	fineStep, posStop, replayOn bool
	replayTo                    uint64
}

func (t *Target) guest() guestState {
	return guestState{m: t.m, mw: t.mw, proc: t.proc, desc: t.desc, ctx: t.ctx, last: t.last,
		exited: t.exited, libsSent: t.libsSent, wine: t.wine, deliver: t.deliver,
		pending: t.pending, final: t.final, loadGen: t.loadGen, shadows: t.shadows,
		fault: t.fault, faultDump: t.faultDump, delivered: t.delivered,
		fineStep: t.fineStep, posStop: t.posStop, replayOn: t.replayOn, replayTo: t.replayTo}
}

func (t *Target) setGuest(g guestState) {
	t.machMu.Lock() // Interrupt reads t.m from another goroutine
	t.m = g.m
	t.machMu.Unlock()
	t.mw, t.proc, t.desc, t.ctx, t.last = g.mw, g.proc, g.desc, g.ctx, g.last
	t.exited, t.libsSent, t.wine, t.deliver = g.exited, g.libsSent, g.wine, g.deliver
	t.pending, t.final, t.loadGen, t.shadows = g.pending, g.final, g.loadGen, g.shadows
	t.fault, t.faultDump, t.delivered = g.fault, g.faultDump, g.delivered
	t.fineStep, t.posStop, t.replayOn, t.replayTo = g.fineStep, g.posStop, g.replayOn, g.replayTo
}

func (g guestState) close() {
	if g.wine != nil {
		g.wine.Close()
	}
	if g.m != nil {
		g.m.Close()
	}
}
