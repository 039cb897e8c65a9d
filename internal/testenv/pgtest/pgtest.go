// Package pgtest starts a real PostgreSQL server for tests: Debian's
// postgresql package (hack/deps.sh installs it), initdb into a temporary
// directory, the server on a loopback port the test picks and a unix
// socket in that directory. Nothing is installed or left running: Stop
// (or the end of the test) shuts it down and removes its files.
//
// It lives apart from package testenv so that tests needing only
// PostgreSQL do not link the Kubernetes client that testenv needs.
//
// PostgreSQL refuses to run as root. When the tests run as root, initdb
// and the server run as the "postgres" user the Debian package creates,
// and their directory is handed to that user.
//
// Without the binaries a test skips and says what to install; under CI
// (CI set, or CUTOVER_REQUIRE_ASSETS=1) it fails instead.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Server is a running PostgreSQL.
type Server struct {
	// Port is the loopback TCP port it listens on.
	Port int
	// Dir holds the data directory and the unix socket.
	Dir string
	// Bin is the directory of the PostgreSQL binaries used.
	Bin string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the server process is gone
	log    *bytes.Buffer
	dbs    atomic.Int64
	cred   *syscall.Credential // nil when running as ourselves
	once   sync.Once
	err    error
}

// Options tune the server.
type Options struct {
	// NoFsync turns fsync off, for tests that restart the server often
	// and measure nothing. Zero: fsync on, as in production, so
	// benchmarks measure durable commits.
	NoFsync bool
}

// EnvRequire makes missing binaries a failure instead of a skip (the same
// variable package testenv reads).
const EnvRequire = "CUTOVER_REQUIRE_ASSETS"

var shared struct {
	sync.Mutex
	inMain bool
	srv    *Server
	err    error
	skip   string
}

// Main runs a test package whose tests call Shared, and stops the shared
// server afterwards, also when the run is interrupted. Call it from
// TestMain after anything that must run first:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	shared.Lock()
	shared.inMain = true
	shared.Unlock()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		shared.Lock()
		if shared.srv != nil {
			shared.srv.Stop()
		}
		os.Exit(130)
	}()
	code := m.Run()
	signal.Stop(sig)
	shared.Lock()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stopping PostgreSQL:", err)
			if code == 0 {
				code = 1
			}
		}
		shared.srv = nil
	}
	shared.Unlock()
	return code
}

// Shared returns the package's server, starting it on first use; tests
// share it and take a database each (NewDatabase). Without Main in
// TestMain it falls back to a server for this test alone. The shared
// server runs without fsync: tests kill clients, never the server, and
// need no durability from it; a benchmark of durable commits starts its
// own with Start.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.inMain {
		return Start(t, Options{NoFsync: true})
	}
	if shared.srv == nil && shared.err == nil && shared.skip == "" {
		bin, missing := findBin()
		if missing != "" {
			shared.skip = missing
		} else {
			shared.srv, shared.err = start(bin, Options{NoFsync: true})
		}
	}
	if shared.skip != "" {
		skipOrFail(t, shared.skip)
	}
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.srv
}

// Start starts a server for one test; it stops when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, missing := findBin()
	if missing != "" {
		skipOrFail(t, missing)
	}
	s, err := start(bin, opts)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: stopping PostgreSQL: %v", err)
		}
	})
	return s
}

// URL is a connection URL for database db as the superuser "postgres".
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// NewDatabase creates an empty database and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	if out, err := s.psql("postgres", "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v\n%s", err, out)
	}
	return s.URL(name)
}

// NewSchema creates an empty schema in database "postgres" and returns a
// URL whose search_path is that schema: a fresh place for tables, much
// cheaper than a database (CREATE DATABASE copies a template and
// checkpoints).
func (s *Server) NewSchema(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	if out, err := s.psql("postgres", "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("pgtest: create schema: %v\n%s", err, out)
	}
	return s.URL("postgres") + "&search_path=" + name
}

// Exec runs SQL in database db with psql, as the superuser; for tests
// that must go behind a store's back.
func (s *Server) Exec(t testing.TB, db, sql string) string {
	t.Helper()
	out, err := s.psql(db, sql)
	if err != nil {
		t.Fatalf("pgtest: psql: %v\n%s", err, out)
	}
	return out
}

func (s *Server) psql(db, sql string) (string, error) {
	cmd := exec.Command(filepath.Join(s.Bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres", "-d", db, "-c", sql)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Stop shuts the server down (a fast shutdown: SIGINT) and removes its
// directory.
func (s *Server) Stop() error {
	s.once.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			s.cmd.Process.Signal(os.Interrupt)
			select {
			case <-s.exited:
			case <-time.After(15 * time.Second):
				// The whole group: the postmaster's children too.
				syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
				<-s.exited
				s.err = errors.New("PostgreSQL did not stop within 15s; killed")
			}
		}
		if err := os.RemoveAll(s.Dir); err != nil && s.err == nil {
			s.err = err
		}
	})
	return s.err
}

// findBin returns the newest PostgreSQL bin directory, or what is missing.
func findBin() (string, string) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "postgres")) && isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "psql")) {
			return d, ""
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "initdb")) {
			return d, ""
		}
	}
	return "", "PostgreSQL not installed (/usr/lib/postgresql/*/bin/{postgres,initdb,psql}); run hack/deps.sh (Debian package postgresql)"
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&0o111 != 0
}

func skipOrFail(t testing.TB, missing string) {
	t.Helper()
	if v := os.Getenv(EnvRequire); v != "" && v != "0" && v != "false" {
		t.Fatalf("%s (required: %s=1)", missing, EnvRequire)
	}
	if v := os.Getenv("CI"); v != "" && v != "0" && v != "false" {
		t.Fatalf("%s (required under CI)", missing)
	}
	t.Skip(missing)
}

func start(bin string, opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "cutover-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Bin: bin, log: &bytes.Buffer{}}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(errors.New("running as root, and PostgreSQL refuses root: no \"postgres\" user to run it as (the Debian package creates one)"))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// MkdirTemp made the directory 0700 and ours; the parent (/tmp)
		// is world-traversable, so handing this one over is enough.
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	initdb := s.command(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		s.Port = port
		args := []string{"-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
			"-c", "max_connections=200", "-c", "shared_buffers=64MB", "-c", "logging_collector=off"}
		if opts.NoFsync {
			args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
		}
		s.log.Reset()
		s.cmd = s.command(context.Background(), filepath.Join(bin, "postgres"), args...)
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		s.cmd.SysProcAttr.Setpgid = true
		if err := s.cmd.Start(); err != nil {
			return fail(err)
		}
		s.exited = make(chan struct{})
		go func(cmd *exec.Cmd, exited chan struct{}) {
			cmd.Wait()
			close(exited)
		}(s.cmd, s.exited)
		err = s.waitReady(30 * time.Second)
		if err == nil {
			return s, nil
		}
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		// Another process may have taken the port between our probe and
		// the server's bind: try another.
		if attempt < 3 && strings.Contains(s.log.String(), "could not bind") {
			continue
		}
		return fail(fmt.Errorf("%v\n%s", err, s.log.String()))
	}
}

// command runs a PostgreSQL binary, as the postgres user when we are root.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Dir = s.Dir
	return cmd
}

func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return errors.New("postgres exited during start")
		default:
		}
		if out, err := s.psql("postgres", "SELECT 1"); err == nil && strings.TrimSpace(out) == "1" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("postgres not ready after %v", timeout)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
