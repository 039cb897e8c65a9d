// Command proxy runs cutover's embedded proxy for bench/proxy.sh, until
// SIGTERM or SIGINT. It stands in for `cutover proxy` so that the
// benchmark measures the data plane alone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/cutoverhq/cutover/proxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "traffic address")
	legacy := fs.String("legacy", "", "legacy upstream URLs, comma-separated")
	newer := fs.String("new", "", "new upstream URLs, comma-separated")
	weights := fs.String("weights", "100/0", "legacy/new weights in percent")
	cookie := fs.String("cookie", "", `sticky cookie name ("-" for none)`)
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var w proxy.Weights
	if _, err := fmt.Sscanf(*weights, "%d/%d", &w.Legacy, &w.New); err != nil {
		return fmt.Errorf("weights %q: %w", *weights, err)
	}
	cfg := proxy.Config{
		Legacy:       split(*legacy),
		New:          split(*newer),
		Weights:      w,
		StickyCookie: *cookie,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	p, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
