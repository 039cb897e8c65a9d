package plan

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// GitCommit returns the commit that last changed the plan file when the
// file lives in a Git work tree, with "+dirty" appended when the file
// differs from that commit; "" when it is not in Git (or git is missing).
// Audit records carry it so an auditor can find the reviewed plan.
func (p *Plan) GitCommit(ctx context.Context) string {
	if p.File == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dir, base := filepath.Split(p.File)
	if dir == "" {
		dir = "."
	}
	git := func(args ...string) (string, bool) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err == nil
	}
	commit, ok := git("log", "-1", "--format=%H", "--", base)
	if !ok || commit == "" {
		return ""
	}
	if status, ok := git("status", "--porcelain", "--", base); ok && status != "" {
		commit += "+dirty"
	}
	return commit
}
