package shift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/cutoverhq/cutover/internal/fsutil"
)

// Store keeps a shift's state across restarts.
type Store interface {
	// Load returns the saved state, or ErrNoState when none was saved.
	Load(ctx context.Context) (Saved, error)
	// Save replaces the saved state; after it returns, a crash loses
	// nothing it saved.
	Save(ctx context.Context, s Saved) error
}

// Saved is what a Store holds: the engine's state and the plan it runs.
type Saved struct {
	// Plan is the plan's name and PlanDigest its SHA-256: a state saved
	// for one plan is not resumed under another.
	Plan       string `json:"plan"`
	PlanDigest string `json:"planDigest"`
	State      State  `json:"state"`
}

// ErrNoState is returned by Load when nothing was saved yet.
var ErrNoState = errors.New("no saved state")

// FileStore keeps the state in a JSON file, replaced atomically (temporary
// file, fsync, rename) on every save.
type FileStore struct {
	Path string
}

var _ Store = (*FileStore)(nil)

// Load reads the state file.
func (f *FileStore) Load(ctx context.Context) (Saved, error) {
	var s Saved
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return s, ErrNoState
	}
	if err != nil {
		return s, fmt.Errorf("cannot read state: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("state file %s is corrupt: %w", f.Path, err)
	}
	return s, nil
}

// Save writes the state file atomically.
func (f *FileStore) Save(ctx context.Context, s Saved) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(f.Path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("cannot save state to %s: %w", f.Path, err)
	}
	return nil
}
