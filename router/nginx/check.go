package nginx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Check tells, in one line, what would keep a shift from working: an
// include file that cannot be written, does not exist yet or is not
// included, a configuration nginx -t refuses, a status server that does
// not answer, a file that differs from what the workers serve, and
// reloads whose old workers nothing bounds.
func (r *Router) Check(ctx context.Context) error {
	var problems []string
	dir := filepath.Dir(r.include)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		problems = append(problems, fmt.Sprintf("the include file's directory %s does not exist", dir))
	} else if tmp, err := os.CreateTemp(dir, ".cutover-check-*"); err != nil {
		problems = append(problems, fmt.Sprintf("cannot write the include file's directory %s: %v", dir, errors.Unwrap(err)))
	} else {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	var onDisk *status
	if b, err := os.ReadFile(r.include); errors.Is(err, os.ErrNotExist) {
		problems = append(problems, fmt.Sprintf("include file %s does not exist yet: write the first one with the legacy servers (docs/routers.md) and include it inside http {}", r.include))
	} else if err != nil {
		problems = append(problems, fmt.Sprintf("include file: %v", err))
	} else if st, err := parseHeader(string(b)); err != nil {
		problems = append(problems, fmt.Sprintf("include file %s was not written by cutover (%v): the router would replace it", r.include, err))
	} else {
		onDisk = &st
	}

	if r.testCmd != nil {
		if _, err := r.run(ctx, r.testCmd); err != nil {
			problems = append(problems, fmt.Sprintf("the configuration test fails: %v", err))
		}
	} else if out, err := r.run(ctx, r.testArgs(true)); err != nil {
		problems = append(problems, fmt.Sprintf("the configuration test fails: %v", err))
	} else {
		d := parseDump(string(out))
		if onDisk != nil && !d.includes(r.include) {
			problems = append(problems, fmt.Sprintf("nginx's configuration does not include %s: add `include %s;` inside http {}", r.include, r.include))
		}
		if !d.shutdownTimeout {
			problems = append(problems, "every step reloads nginx, and every reload starts new worker processes while the old ones finish their connections; worker_shutdown_timeout is not set, so long-lived connections can keep old workers (and their memory) for as long as they last: set `worker_shutdown_timeout 30s;` in nginx.conf's main context")
		}
	}

	if live, err := r.live(ctx); err != nil {
		problems = append(problems, err.Error())
	} else if onDisk != nil && onDisk.Digest != live.Digest {
		problems = append(problems, fmt.Sprintf("%s differs from what nginx serves (edited without a reload?): nginx serves legacy %d%% / new %d%%, the file says legacy %d%% / new %d%%", r.include, live.Weights[0], live.Weights[1], onDisk.Weights[0], onDisk.Weights[1]))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// dump is what Check reads from `nginx -T`.
type dump struct {
	// files are the configuration files nginx read, as it names them.
	files []string
	// shutdownTimeout is true when worker_shutdown_timeout is set.
	shutdownTimeout bool
}

// parseDump reads `nginx -T`'s output: each file comes after a line
// "# configuration file <path>:". Comments are skipped, so a
// commented-out directive does not count.
func parseDump(out string) dump {
	var d dump
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "# configuration file "); ok && strings.HasSuffix(rest, ":") {
			d.files = append(d.files, strings.TrimSuffix(rest, ":"))
			continue
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, stmt := range strings.FieldsFunc(line, func(r rune) bool { return r == ';' || r == '{' || r == '}' }) {
			if f := strings.Fields(stmt); len(f) > 1 && f[0] == "worker_shutdown_timeout" {
				d.shutdownTimeout = true
			}
		}
	}
	return d
}

// includes reports whether nginx read path, comparing resolved paths.
func (d dump) includes(path string) bool {
	want := resolve(path)
	for _, f := range d.files {
		if f == path || resolve(f) == want || (!filepath.IsAbs(path) && strings.HasSuffix(f, string(filepath.Separator)+filepath.Clean(path))) {
			return true
		}
	}
	return false
}

func resolve(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}
