package rsp

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// catchTarget records QCatchSyscalls and stops at a system call entry.
type catchTarget struct {
	*testTarget
	on   bool
	nums []int
}

func (c *catchTarget) CatchSyscalls(on bool, nums []int) error {
	if len(nums) == 1 && nums[0] == 0x3e7 {
		return errors.New("refused")
	}
	c.on, c.nums = on, nums
	return nil
}

func (c *catchTarget) Resume(a []ResumeAction) (Stop, error) {
	if c.on {
		c.stop = Stop{Kind: StopSyscallEntry, Signal: SIGTRAP, Thread: 1, Syscall: 0xe7}
		return c.stop, nil
	}
	return c.testTarget.Resume(a)
}

// TestCatchSyscalls: QCatchSyscalls is advertised and parsed for a
// SyscallCatcher, and system call stops carry syscall_entry/return.
func TestCatchSyscalls(t *testing.T) {
	ct := &catchTarget{testTarget: newTestTarget()}
	b, _, _ := startPipe(t, ct)
	p := newRawPeer(t, b)
	assert.Contains(t, p.ask("qSupported:swbreak+"), ";QCatchSyscalls+")
	assert.Equal(t, "OK", p.ask("QCatchSyscalls:1;1;e7"))
	assert.True(t, ct.on)
	assert.Equal(t, []int{1, 0xe7}, ct.nums)
	assert.Regexp(t, `^T05thread:1;.*syscall_entry:e7;$`, askStop(p, "c"))
	ct.stop.Kind = StopSyscallReturn
	assert.Regexp(t, `^T05thread:1;.*syscall_return:e7;$`, p.ask("?"))
	assert.Equal(t, "OK", p.ask("QCatchSyscalls:1"))
	assert.Nil(t, ct.nums, "no list: every system call")
	assert.Equal(t, "OK", p.ask("QCatchSyscalls:0"))
	assert.False(t, ct.on)
	for _, bad := range []string{"QCatchSyscalls:", "QCatchSyscalls:2", "QCatchSyscalls:0;1", "QCatchSyscalls:1;zz", "QCatchSyscalls:1;", "QCatchSyscalls:11"} {
		assert.Equal(t, "E16", p.ask(bad), bad)
	}
	assert.Equal(t, "E01", p.ask("QCatchSyscalls:1;3e7"), "the target's refusal")

	conn2, _, _ := startPipe(t, newTestTarget())
	p2 := newRawPeer(t, conn2)
	assert.NotContains(t, p2.ask("qSupported:"), "QCatchSyscalls")
	assert.Equal(t, "", p2.ask("QCatchSyscalls:1"))
}
