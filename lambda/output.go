package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// maxLine is the longest line relayed as one record; a longer one is cut
// into several, as CloudWatch cuts events at 256 KB.
const maxLine = 256 * 1024

// lineWriter relays a function process's output line by line as log
// records carrying the request id of the invocation the process is
// running, which is what Lambda's log stream gives each line. A line that
// is a JSON object (AWS_LAMBDA_LOG_FORMAT=JSON, Powertools) is kept as
// structured data rather than quoted.
type lineWriter struct {
	p      *proc
	stream string
	mu     sync.Mutex
	buf    []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.buf = append(w.buf, b...)
			for len(w.buf) >= maxLine {
				w.emit(w.buf[:maxLine])
				w.buf = append(w.buf[:0], w.buf[maxLine:]...)
			}
			break
		}
		w.buf = append(w.buf, b[:i]...)
		w.emit(w.buf)
		w.buf = w.buf[:0]
		b = b[i+1:]
	}
	return n, nil
}

// flush relays a last line that had no newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *lineWriter) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	rt := w.p.rt
	rt.mu.Lock()
	id, starting := w.p.lastID, !w.p.initDone
	rt.mu.Unlock()
	attrs := []slog.Attr{slog.String("stream", w.stream), slog.Int("process", w.p.n)}
	if id != "" {
		attrs = append(attrs, slog.String("requestId", id))
	} else if starting {
		attrs = append(attrs, slog.String("phase", "init"))
	}
	msg := string(line)
	if len(line) > 1 && line[0] == '{' && json.Valid(line) {
		attrs = append(attrs, slog.Any("record", json.RawMessage(bytes.Clone(line))))
		msg = "function log"
	}
	rt.log.LogAttrs(context.Background(), slog.LevelInfo, msg, attrs...)
}

// outputPipe reads one of a process's output streams. The process writes
// a line and then asks for its next invocation, so the runtime catches up
// with the pipe (drain) before it hands one out: each line then carries
// the request id of the invocation that wrote it.
type outputPipe struct {
	r    *os.File
	w    *lineWriter
	busy atomic.Bool // bytes were read and are being relayed
	done chan struct{}
}

func newOutputPipe(lw *lineWriter) (*outputPipe, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	return &outputPipe{r: r, w: lw, done: make(chan struct{})}, w, nil
}

func (o *outputPipe) run() {
	defer close(o.done)
	buf := make([]byte, 64*1024)
	for {
		n, err := o.r.Read(buf)
		if n > 0 {
			o.busy.Store(true)
			_, _ = o.w.Write(buf[:n])
			o.busy.Store(false)
		}
		if err != nil {
			if err != io.EOF {
				o.w.p.rt.log.Debug("function output", "error", err.Error())
			}
			o.w.flush()
			_ = o.r.Close()
			return
		}
	}
}

// pending reports whether the pipe holds bytes not yet relayed.
func (o *outputPipe) pending() bool {
	if o.busy.Load() {
		return true
	}
	var n int
	rc, err := o.r.SyscallConn()
	if err != nil {
		return false
	}
	_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	if n > 0 {
		return true
	}
	// A read that just returned may not have marked itself busy yet.
	runtime.Gosched()
	return o.busy.Load()
}

// drain waits (briefly: a function that floods its output does not hold
// invocations up) until what the process wrote so far is relayed, and
// relays a last unterminated line.
func (o *outputPipe) drain() {
	deadline := time.Now().Add(20 * time.Millisecond)
	for o.pending() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Microsecond)
	}
	o.w.flush()
}
