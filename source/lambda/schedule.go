package lambda

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zone names are checked the same on any machine
)

// convertSchedule turns an EventBridge schedule expression into a
// five-field Kubernetes (robfig/cron standard) schedule, in UTC as
// EventBridge evaluates it. warn is non-empty when the result is not
// exactly the same schedule; err when no cron can say it.
//
// Supported: rate(N minute|minutes|hour|hours|day|days) and
// cron(minutes hours day-of-month month day-of-week year).
func convertSchedule(expr string) (cron, warn string, err error) {
	e := strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(e, "rate(") && strings.HasSuffix(e, ")"):
		return convertRate(e[len("rate(") : len(e)-1])
	case strings.HasPrefix(e, "cron(") && strings.HasSuffix(e, ")"):
		return convertCron(e[len("cron(") : len(e)-1])
	case strings.HasPrefix(e, "at(") && strings.HasSuffix(e, ")"):
		return "", "", fmt.Errorf("one-time schedule %q has no cron form: run it once as a Job", expr)
	}
	return "", "", fmt.Errorf("schedule %q is neither rate(...) nor cron(...)", expr)
}

// Periods a five-field cron repeats at evenly, in minutes: divisors of an
// hour, divisors of a day, a day, a week.
var cronPeriods = []int{1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440, 10080}

func convertRate(body string) (string, string, error) {
	f := strings.Fields(body)
	if len(f) != 2 {
		return "", "", fmt.Errorf("rate(%s): want rate(<number> <unit>)", body)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 || n > 1_000_000 {
		return "", "", fmt.Errorf("rate(%s): %q is not a positive whole number", body, f[0])
	}
	var minutes int
	switch f[1] {
	case "minute", "minutes":
		minutes = n
	case "hour", "hours":
		minutes = n * 60
	case "day", "days":
		minutes = n * 1440
	default:
		return "", "", fmt.Errorf("rate(%s): unit %q is not minute(s), hour(s) or day(s)", body, f[1])
	}
	if exact, ok := periodCron(minutes); ok {
		return exact, "", nil
	}
	// Day rates: "every N days" restarts on the 1st of each month in
	// cron; weeks and longer become weekly or monthly.
	if minutes%1440 == 0 {
		days := minutes / 1440
		switch {
		case days < 28 && days != 7:
			return fmt.Sprintf("0 0 */%d * *", days), fmt.Sprintf("rate(%s) became every %d days counted from the 1st of each month: the gap around month ends is shorter", body, days), nil
		case days < 365:
			return "0 0 1 * *", fmt.Sprintf("rate(%s) became monthly (on the 1st): cron cannot repeat every %d days", body, days), nil
		default:
			return "0 0 1 1 *", fmt.Sprintf("rate(%s) became yearly (January 1st): cron cannot repeat every %d days", body, days), nil
		}
	}
	best := nearestPeriod(minutes)
	c, _ := periodCron(best)
	return c, fmt.Sprintf("rate(%s) cannot repeat evenly in cron: it became every %s (%s), the nearest even period", body, describeMinutes(best), c), nil
}

// periodCron returns the cron that repeats every m minutes, when one
// repeats exactly that often.
func periodCron(m int) (string, bool) {
	switch {
	case m == 1:
		return "* * * * *", true
	case m < 60 && 60%m == 0:
		return fmt.Sprintf("*/%d * * * *", m), true
	case m == 60:
		return "0 * * * *", true
	case m < 1440 && m%60 == 0 && 1440%m == 0:
		return fmt.Sprintf("0 */%d * * *", m/60), true
	case m == 1440:
		return "0 0 * * *", true
	case m == 10080:
		return "0 0 * * 0", true
	}
	return "", false
}

// nearestPeriod returns the even period closest to m; on a tie, the
// shorter one, so the job never runs less often than it did.
func nearestPeriod(m int) int {
	best := cronPeriods[0]
	for _, p := range cronPeriods {
		if abs(p-m) < abs(best-m) {
			best = p
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func describeMinutes(m int) string {
	switch {
	case m%1440 == 0:
		return plural(m/1440, "day")
	case m%60 == 0:
		return plural(m/60, "hour")
	}
	return plural(m, "minute")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// cronField describes one field of an EventBridge cron expression.
type cronField struct {
	name     string
	min, max int
	names    []string // names for min, min+1, … (months, weekdays)
}

var (
	fMinute = cronField{name: "minutes", min: 0, max: 59}
	fHour   = cronField{name: "hours", min: 0, max: 23}
	fDOM    = cronField{name: "day-of-month", min: 1, max: 31}
	fMonth  = cronField{name: "month", min: 1, max: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}}
	fDOW    = cronField{name: "day-of-week", min: 1, max: 7, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}}
	fYear   = cronField{name: "year", min: 1970, max: 2199}
)

func convertCron(body string) (string, string, error) {
	f := strings.Fields(body)
	if len(f) != 6 {
		return "", "", fmt.Errorf("cron(%s): want six fields (minutes hours day-of-month month day-of-week year), got %d", body, len(f))
	}
	dom, dow := f[2], f[4]
	if dom == "?" && dow == "?" {
		return "", "", fmt.Errorf("cron(%s): day-of-month and day-of-week cannot both be '?'", body)
	}
	if dom != "?" && dow != "?" {
		return "", "", fmt.Errorf("cron(%s): one of day-of-month and day-of-week must be '?'", body)
	}
	out := make([]string, 5)
	for i, fd := range []cronField{fMinute, fHour, fDOM, fMonth, fDOW} {
		v, err := fd.convert(f[i])
		if err != nil {
			return "", "", fmt.Errorf("cron(%s): %w", body, err)
		}
		out[i] = v
	}
	var warn string
	if f[5] != "*" {
		if _, err := fYear.convert(f[5]); err != nil {
			return "", "", fmt.Errorf("cron(%s): %w", body, err)
		}
		warn = fmt.Sprintf("cron(%s) is limited to year %s; Kubernetes cron has no year field, so the CronJob runs every year until it is removed or suspended", body, f[5])
	}
	return strings.Join(out, " "), warn, nil
}

// convert turns one EventBridge field into its standard cron form.
func (fd cronField) convert(s string) (string, error) {
	if s == "?" || s == "*" {
		return "*", nil
	}
	if strings.ContainsAny(s, "LW#") && !fd.isName(s) {
		return "", fmt.Errorf("%s %q uses L, W or #, which Kubernetes cron does not have (last day, nearest weekday, nth weekday); rewrite the schedule or run a daily job that checks the date", fd.name, s)
	}
	var parts []string
	for _, item := range strings.Split(s, ",") {
		p, err := fd.convertItem(item)
		if err != nil {
			return "", err
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ","), nil
}

func (fd cronField) isName(s string) bool {
	for _, item := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '-' || r == '/' }) {
		if _, ok := fd.nameIndex(item); !ok {
			return false
		}
	}
	return len(fd.names) > 0
}

func (fd cronField) nameIndex(s string) (int, bool) {
	for i, n := range fd.names {
		if strings.EqualFold(s, n) {
			return fd.min + i, true
		}
	}
	return 0, false
}

// convertItem converts one comma-separated item: a value, a range a-b,
// or either with a /step. EventBridge's "a/step" means from a to the end.
func (fd cronField) convertItem(item string) (string, error) {
	rng, step := item, ""
	if i := strings.IndexByte(item, '/'); i >= 0 {
		rng, step = item[:i], item[i+1:]
		n, err := strconv.Atoi(step)
		if err != nil || n <= 0 || n > fd.max-fd.min+1 {
			return "", fmt.Errorf("%s %q: step %q is not a number from 1 to %d", fd.name, item, step, fd.max-fd.min+1)
		}
	}
	var lo, hi int
	switch {
	case rng == "*":
		lo, hi = fd.min, fd.max
	case strings.Contains(rng, "-"):
		a, b, _ := strings.Cut(rng, "-")
		var err error
		if lo, err = fd.value(a); err != nil {
			return "", err
		}
		if hi, err = fd.value(b); err != nil {
			return "", err
		}
		if hi < lo {
			return "", fmt.Errorf("%s %q: range runs backwards", fd.name, item)
		}
	default:
		v, err := fd.value(rng)
		if err != nil {
			return "", err
		}
		lo, hi = v, v
		if step != "" {
			hi = fd.max
		}
	}
	var out string
	switch {
	case lo == fd.min && hi == fd.max && step != "":
		return "*/" + step, nil
	case lo == hi:
		out = fd.emit(lo)
	default:
		out = fd.emit(lo) + "-" + fd.emit(hi)
	}
	if step != "" {
		out += "/" + step
	}
	return out, nil
}

func (fd cronField) value(s string) (int, error) {
	if v, ok := fd.nameIndex(s); ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < fd.min || v > fd.max {
		return 0, fmt.Errorf("%s %q is not a value from %d to %d", fd.name, s, fd.min, fd.max)
	}
	return v, nil
}

// emit writes a value in standard cron: weekdays shift from EventBridge's
// 1-7 (SUN-SAT) to 0-6; everything else keeps its number.
func (fd cronField) emit(v int) string {
	if fd.name == fDOW.name {
		v--
	}
	return strconv.Itoa(v)
}

// scheduleTimeZone reads EventBridge Scheduler's time zone of a schedule
// (SAM ScheduleExpressionTimezone, serverless.yml timezone): the CronJob
// keeps the expression's hours and runs them in that zone (its timeZone),
// as the Scheduler did. A name that is not an IANA zone stays a warning:
// the schedule then runs in UTC.
func (fn *function) scheduleTimeZone(tr *trigger, v val) {
	name, note, ok := fn.word(v)
	if !ok {
		return
	}
	if _, err := time.LoadLocation(name); err != nil || name == "" || name == "Local" {
		v.t.Warn(v.field, "CronJob schedule", fmt.Sprintf("%q is not an IANA time zone: the CronJob runs the expression's hours in UTC; set timeZone in values", name))
		return
	}
	tr.TimeZone = name
	if note != "" {
		v.t.Warn(v.field, "CronJob timeZone "+name, note)
		return
	}
	v.t.Mapped(v.field, "CronJob timeZone "+name)
}
