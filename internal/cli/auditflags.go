package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/audit"
)

// auditFlags are the flags every command that acts takes: where its audit
// records go and the key that signs their checkpoints.
type auditFlags struct {
	url string
	key string
}

func addAuditFlags(cmd *cobra.Command, f *auditFlags) {
	def := defaultAuditLog
	if v, ok := os.LookupEnv("CUTOVER_AUDIT"); ok {
		def = v
	}
	cmd.Flags().StringVar(&f.url, "audit", def, `audit log: file:PATH or postgres://… ("off" records nothing; default $CUTOVER_AUDIT or file:cutover-audit.log)`)
	cmd.Flags().StringVar(&f.key, "audit-key", "", "sign the audit log's checkpoints with this ed25519 private key (audit.key from cutover audit keygen; default $CUTOVER_AUDIT_KEY)")
}

// enabled reports whether records are to be written.
func (f auditFlags) enabled() bool { return f.url != "" && f.url != "off" }

// open opens the audit log, or returns nil when auditing is off.
func (f auditFlags) open(ctx context.Context, actor string) (audit.Log, error) {
	if !f.enabled() {
		if f.key != "" {
			return nil, usageError(errors.New("--audit-key needs an audit log"))
		}
		return nil, nil
	}
	key, err := f.signingKey()
	if err != nil {
		return nil, err
	}
	return audit.Open(ctx, f.url, audit.Options{Key: key, Actor: actor})
}

func (f auditFlags) signingKey() (ed25519.PrivateKey, error) {
	path := f.key
	if path == "" {
		path = os.Getenv("CUTOVER_AUDIT_KEY")
	}
	if path == "" {
		return nil, nil
	}
	k, err := audit.LoadPrivateKey(path)
	if err != nil {
		return nil, usageError(err)
	}
	return k, nil
}
