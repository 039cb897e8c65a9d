package lambda

import (
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/service"
)

func TestCheckpointName(t *testing.T) {
	if got, want := checkpointName("fraud-score-stream", "kinesis-card-authorisations"), "fraud-score-stream-kinesis-card-authorisations-checkpoint"; got != want {
		t.Errorf("short name: got %q, want %q", got, want)
	}
	long := strings.Repeat("settlement-", 4) + "projector"
	a := checkpointName(long, "dynamodb-ledger-entries-by-account")
	b := checkpointName(long, "dynamodb-ledger-entries-by-account-2")
	for _, n := range []string{a, b} {
		if err := service.ValidateName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
		if !strings.HasSuffix(n, "-checkpoint") || !strings.HasPrefix(n, "settlement-settlement-") {
			t.Errorf("%q: want the head of the full name and the -checkpoint suffix", n)
		}
	}
	if a == b {
		t.Errorf("two triggers that differ past the cut share the name %q", a)
	}
	if again := checkpointName(long, "dynamodb-ledger-entries-by-account"); again != a {
		t.Errorf("not deterministic: %q, then %q", a, again)
	}
}
