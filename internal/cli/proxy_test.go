package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/metrics/prometheus/promtest"
)

// TestProxyAuditsAdminChangesAcrossARestart: `cutover proxy` records what
// it is told through its admin API, and the process that takes over the
// sockets on SIGHUP takes over the audit log too; the log stays whole.
func TestProxyAuditsAdminChangesAcrossARestart(t *testing.T) {
	bin := buildCutover(t)
	legacy, newer := startSimBackends(t)
	listen, admin := promtest.FreeAddr(t), promtest.FreeAddr(t)
	dir := t.TempDir()
	log := "file:" + filepath.Join(dir, "audit.log")
	pidFile := filepath.Join(dir, "proxy.pid")
	const token = "proxy-audit-token-0123456789"
	cmd := startProcess(t, []string{"CUTOVER_PROXY_TOKEN=" + token}, bin, "proxy", "--listen", listen, "--admin", admin,
		"--legacy", legacy, "--new", newer, "--audit", log, "--pid-file", pidFile)
	put := func(body string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			req, _ := http.NewRequest(http.MethodPut, "http://"+admin+"/v1/weights", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("PUT %s: %s", body, resp.Status)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	put(`{"legacy":90,"new":10}`)
	cmd.Process.Signal(syscall.SIGHUP)
	// The old process exits once the new one serves.
	waitUntil(t, "the hand-over", 20*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.TrimSpace(string(b)) != "" && strings.TrimSpace(string(b)) != itoa(cmd.Process.Pid)
	})
	put(`{"legacy":50,"new":50}`)
	b, _ := os.ReadFile(pidFile)
	var pid int
	for _, c := range strings.TrimSpace(string(b)) {
		pid = pid*10 + int(c-'0')
	}
	syscall.Kill(pid, syscall.SIGTERM)
	var kinds []string
	waitUntil(t, "the new process to stop and close the log", 20*time.Second, func() bool {
		kinds = nil
		rep, err := audit.Verify(context.Background(), log, audit.VerifyOptions{Visit: func(e audit.Entry) { kinds = append(kinds, e.Record.Kind) }})
		return err == nil && rep.OK() && len(kinds) > 0 && kinds[len(kinds)-1] == "proxy-stopped"
	})
	got := strings.Join(kinds, " ")
	for _, want := range []string{"proxy-started", "weight-confirmed", "proxy-restart", "proxy-stopped"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s in %s", want, got)
		}
	}
	if strings.Count(got, "weight-confirmed") != 2 || strings.Count(got, "proxy-started") != 2 {
		t.Errorf("records %s", got)
	}
}

func itoa(i int) string {
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}
