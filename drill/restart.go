package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// PIDFile restarts a `cutover proxy` process through its pid file
// (--pid-file): SIGHUP makes it hand its listening sockets to a new
// process of the same binary, which writes its own id to the file once it
// serves; the old process then drains and exits.
//
// An in-process proxy (`cutover shift run` with router setting "listen")
// cannot be restarted that way: the shift and the proxy are one process,
// and a hand-over inside it would prove nothing about a real restart. A
// restart drill needs the proxy run as its own process (router setting
// "admin").
type PIDFile struct {
	// Path is the proxy's pid file.
	Path string
}

var _ Restarter = PIDFile{}

func (p PIDFile) read() (int, error) {
	b, err := os.ReadFile(p.Path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s: %q is not a process id", p.Path, bytes.TrimSpace(b))
	}
	return pid, nil
}

// Restart sends SIGHUP to the process in the pid file.
func (p PIDFile) Restart(ctx context.Context) (int, error) {
	pid, err := p.read()
	if err != nil {
		return 0, err
	}
	if !alive(pid) {
		return 0, fmt.Errorf("%s names process %d, which is not running", p.Path, pid)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return 0, fmt.Errorf("SIGHUP to process %d: %w", pid, err)
	}
	return pid, nil
}

// TakenOver reports the process in the pid file, and whether it is not
// old and old has exited.
func (p PIDFile) TakenOver(old int) (int, bool, error) {
	cur, err := p.read()
	if err != nil {
		return 0, false, err
	}
	return cur, cur != old && !alive(old), nil
}

// alive reports whether pid runs: it exists and is not a zombie (an
// exited process its parent has not reaped yet).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc here: kill said it exists
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}
