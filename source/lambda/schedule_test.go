package lambda

import (
	"strings"
	"testing"
)

func TestConvertSchedule(t *testing.T) {
	cases := []struct {
		in, want string
		warn     bool
		err      string
	}{
		// rate: exact periods.
		{in: "rate(1 minute)", want: "* * * * *"},
		{in: "rate(5 minutes)", want: "*/5 * * * *"},
		{in: "rate(15 minutes)", want: "*/15 * * * *"},
		{in: "rate(60 minutes)", want: "0 * * * *"},
		{in: "rate(120 minutes)", want: "0 */2 * * *"},
		{in: "rate(1 hour)", want: "0 * * * *"},
		{in: "rate(6 hours)", want: "0 */6 * * *"},
		{in: "rate(24 hours)", want: "0 0 * * *"},
		{in: "rate(1 day)", want: "0 0 * * *"},
		{in: "rate(7 days)", want: "0 0 * * 0"},
		{in: "  rate(10 minutes)  ", want: "*/10 * * * *"},
		// rate: no even period, the nearest (ties go to the shorter).
		{in: "rate(7 minutes)", want: "*/6 * * * *", warn: true},
		{in: "rate(9 minutes)", want: "*/10 * * * *", warn: true},
		{in: "rate(45 minutes)", want: "*/30 * * * *", warn: true},
		{in: "rate(90 minutes)", want: "0 * * * *", warn: true},
		{in: "rate(5 hours)", want: "0 */4 * * *", warn: true},
		{in: "rate(2 days)", want: "0 0 */2 * *", warn: true},
		{in: "rate(30 days)", want: "0 0 1 * *", warn: true},
		{in: "rate(400 days)", want: "0 0 1 1 *", warn: true},
		// rate: not a rate.
		{in: "rate(0 minutes)", err: "positive"},
		{in: "rate(-5 minutes)", err: "positive"},
		{in: "rate(5 weeks)", err: "unit"},
		{in: "rate(five minutes)", err: "positive"},
		{in: "rate(5)", err: "want rate"},
		// cron: ? becomes *, weekdays shift 1-7 (SUN-SAT) to 0-6.
		{in: "cron(0 12 * * ? *)", want: "0 12 * * *"},
		{in: "cron(30 2 ? * MON-FRI *)", want: "30 2 * * 1-5"},
		{in: "cron(0 18 ? * 2-6 *)", want: "0 18 * * 1-5"},
		{in: "cron(0 8 ? * 1,7 *)", want: "0 8 * * 0,6"},
		{in: "cron(0 8 ? * SUN,SAT *)", want: "0 8 * * 0,6"},
		{in: "cron(15 10 ? * 7 *)", want: "15 10 * * 6"},
		{in: "cron(0/15 * * * ? *)", want: "*/15 * * * *"},
		{in: "cron(5/15 * * * ? *)", want: "5-59/15 * * * *"},
		{in: "cron(0 0/6 * * ? *)", want: "0 */6 * * *"},
		{in: "cron(0 9 1 JAN,JUL ? *)", want: "0 9 1 1,7 *"},
		{in: "cron(0 9 1 jan ? *)", want: "0 9 1 1 *"},
		{in: "cron(0 9 1-15/2 * ? *)", want: "0 9 1-15/2 * *"},
		{in: "cron(0 10 ? * WED *)", want: "0 10 * * 3"},
		// cron: a year other than * is dropped with a warning.
		{in: "cron(0 10 * * ? 2026)", want: "0 10 * * *", warn: true},
		{in: "cron(0 10 * * ? 2025-2030)", want: "0 10 * * *", warn: true},
		// cron: what Kubernetes cron cannot say.
		{in: "cron(0 10 L * ? *)", err: "L, W or #"},
		{in: "cron(0 10 15W * ? *)", err: "L, W or #"},
		{in: "cron(0 10 ? * 6L *)", err: "L, W or #"},
		{in: "cron(0 10 ? * 2#1 *)", err: "L, W or #"},
		{in: "cron(0 10 ? * MON#2 *)", err: "L, W or #"},
		// cron: malformed.
		{in: "cron(0 10 * * *)", err: "six fields"},
		{in: "cron(0 10 * * ? * *)", err: "six fields"},
		{in: "cron(0 10 ? * ? *)", err: "both"},
		{in: "cron(0 10 1 * MON *)", err: "must be '?'"},
		{in: "cron(60 10 * * ? *)", err: "minutes"},
		{in: "cron(0 24 * * ? *)", err: "hours"},
		{in: "cron(0 10 0 * ? *)", err: "day-of-month"},
		{in: "cron(0 10 * 13 ? *)", err: "month"},
		{in: "cron(0 10 ? * 8 *)", err: "day-of-week"},
		{in: "cron(0 10 ? * 6-2 *)", err: "backwards"},
		{in: "cron(0/0 10 * * ? *)", err: "step"},
		{in: "cron(0 10 * * ? 1969)", err: "year"},
		{in: "at(2025-01-01T00:00:00)", err: "one-time"},
		{in: "every 5 minutes", err: "neither"},
		{in: "", err: "neither"},
	}
	for _, c := range cases {
		got, warn, err := convertSchedule(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("convertSchedule(%q) error = %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("convertSchedule(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("convertSchedule(%q) = %q, want %q", c.in, got, c.want)
		}
		if (warn != "") != c.warn {
			t.Errorf("convertSchedule(%q) warning = %q, want a warning: %v", c.in, warn, c.warn)
		}
	}
}

// FuzzScheduleExpression: any expression either converts to five fields
// or fails with an error; it never panics.
func FuzzScheduleExpression(f *testing.F) {
	for _, s := range []string{"rate(5 minutes)", "rate(7 days)", "cron(30 2 ? * MON-FRI *)", "cron(0/15 * * * ? 2026)", "cron(0 10 ? * 6L *)", "cron(5/15 1-3 1,15 JAN-MAR ? *)", "rate(1000000 days)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		got, _, err := convertSchedule(expr)
		if err != nil {
			return
		}
		if n := len(strings.Fields(got)); n != 5 {
			t.Fatalf("convertSchedule(%q) = %q: %d fields", expr, got, n)
		}
	})
}
