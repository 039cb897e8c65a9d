package flagval

import (
	"testing"
	"time"
)

func TestSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{"0.5": 500 * time.Millisecond, "2": 2 * time.Second, "-1": -time.Second, "1m": time.Minute} {
		var s Seconds
		if err := s.Set(in); err != nil || time.Duration(s) != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, time.Duration(s), err, want)
		}
	}
}

// TestSecondsRefusesNaNAndHugeNumbers: kafka's and sqs's copies took NaN,
// Inf and 1e300 and turned them into whatever int64 conversion gave.
func TestSecondsRefusesNaNAndHugeNumbers(t *testing.T) {
	for _, in := range []string{"NaN", "Inf", "-Inf", "1e300", "five"} {
		var s Seconds
		if err := s.Set(in); err == nil {
			t.Errorf("Set(%q) = %v, want an error", in, time.Duration(s))
		}
	}
}

func TestTimestamp(t *testing.T) {
	want := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, in := range []string{"1704164645", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000+0000"} {
		var ts Timestamp
		if err := ts.Set(in); err != nil || !time.Time(ts).Equal(want) {
			t.Errorf("Set(%q) = %v, %v; want %v", in, time.Time(ts), err, want)
		}
	}
	for _, in := range []string{"NaN", "1e300", "yesterday"} {
		var ts Timestamp
		if err := ts.Set(in); err == nil {
			t.Errorf("Set(%q) = %v, want an error", in, time.Time(ts))
		}
	}
}
