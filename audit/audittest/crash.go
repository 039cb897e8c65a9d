package audittest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/audit"
)

// envCrashChild tells a re-executed test binary to be the crash test's
// writer, appending to the log it names.
const envCrashChild = "CUTOVER_AUDITTEST_CRASH_LOCATION"

// CrashOptions tune RunCrash.
type CrashOptions struct {
	// Rounds is how many times a writer is started and killed. Zero: 12.
	Rounds int
	// Workers is how many goroutines append concurrently in the writer.
	// Zero: 16.
	Workers int
}

// CrashChildMain makes the test binary the crash test's writer when
// RunCrash started it; otherwise it returns at once. Call it first thing
// in TestMain of a package that calls RunCrash.
func CrashChildMain() {
	loc := os.Getenv(envCrashChild)
	if loc == "" {
		return
	}
	workers, _ := strconv.Atoi(os.Getenv(envCrashChild + "_WORKERS"))
	if err := crashChild(loc, max(workers, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

// crashChild appends until it is killed, and prints "SEQ HASH" for each
// acknowledged record: one write(2) per line, which a pipe delivers whole.
func crashChild(loc string, workers int) error {
	ctx := context.Background()
	l, err := audit.Open(ctx, loc, audit.Options{Key: TestKey(), CheckpointEvery: 25, Actor: "crash-child"})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second) // never outlive a lost parent for long
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline); n++ {
				r := Sample(n)
				r.SetData(map[string]int{"worker": w, "n": n})
				got, err := l.Append(ctx, r)
				if err != nil {
					errc <- err
					return
				}
				if _, err := os.Stdout.Write([]byte(strconv.FormatUint(got.Seq, 10) + " " + got.Hash + "\n")); err != nil {
					errc <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		return err
	}
	return l.Close(ctx)
}

// RunCrash kills a writer appending under load with SIGKILL at random
// points, Rounds times, restarting it on the same log each time. After
// each kill the log must verify whole (a torn last line allowed), and
// hold every record the writer acknowledged, with the hash it was
// acknowledged with. The writer is this test binary, re-executed: its
// TestMain must call CrashChildMain.
func RunCrash(t *testing.T, loc string, opts CrashOptions) {
	if opts.Rounds == 0 {
		opts.Rounds = 12
	}
	if opts.Workers == 0 {
		opts.Workers = 16
	}
	acked := map[uint64]string{}
	rounds, torn, repaired := 0, 0, 0
	for round := 0; round < opts.Rounds; round++ {
		got, stderr := crashRound(t, loc, opts.Workers, round)
		for seq, h := range got {
			acked[seq] = h
		}
		rep := MustVerify(t, loc)
		if !rep.OK() {
			t.Fatalf("round %d: after SIGKILL the log is not whole: %s\nwriter stderr:\n%s", round, describe(rep), stderr)
		}
		if rep.Torn != nil {
			torn++
		}
		stored := map[uint64]string{}
		for _, e := range Entries(t, loc) {
			if e.Err == nil {
				stored[e.Record.Seq] = e.Record.Hash
				if e.Record.Kind == audit.KindRepair {
					repaired++
				}
			}
		}
		for seq, h := range acked {
			if stored[seq] != h {
				t.Fatalf("round %d: acknowledged record %d (hash %s) is stored as %q", round, seq, h, stored[seq])
			}
		}
		rounds++
	}
	// A last clean open and close: the torn tail, if any, is repaired and
	// the log ends proven.
	ctx := context.Background()
	l, err := audit.Open(ctx, loc, audit.Options{Key: TestKey()})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep := MustVerify(t, loc)
	if !rep.OK() || rep.Torn != nil || rep.Proven != rep.Head.Seq {
		t.Fatalf("after the last clean close: %s", describe(rep))
	}
	t.Logf("%d rounds, %d acknowledged records all stored; %d records in the log; %d rounds left a torn line, %d repair records", rounds, len(acked), rep.Head.Seq, torn, repaired)
}

// crashRound starts the writer, kills it at a random point and returns
// the acknowledgements it printed.
func crashRound(t *testing.T, loc string, workers, round int) (map[uint64]string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashChild+"="+loc, envCrashChild+"_WORKERS="+strconv.Itoa(workers))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// A pipe of our own rather than StdoutPipe: Wait closes that one, and
	// acknowledgements still in it would be lost. Ours reads to EOF,
	// which comes when the killed writer's end closes.
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	acks := map[uint64]string{}
	first := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.OnceFunc(func() { close(first) })
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				done <- fmt.Errorf("writer printed %q", sc.Text())
				return
			}
			seq, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				done <- err
				return
			}
			acks[seq] = f[1]
			once()
		}
		done <- sc.Err()
	}()
	// Even rounds kill under load, after the first acknowledgement; odd
	// ones at any moment from the start, opening and repairing included.
	if round%2 == 0 {
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: the writer acknowledged nothing in 30s; stderr:\n%s", round, stderr.String())
		}
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
	} else {
		time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("round %d: reading acknowledgements: %v", round, err)
	}
	werr := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("round %d: the writer exited by itself (%v) before the kill; stderr:\n%s", round, werr, stderr.String())
	}
	return acks, stderr.String()
}
