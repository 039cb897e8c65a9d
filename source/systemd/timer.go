package systemd

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// timer maps the .timer unit that starts the service: a CronJob when its
// schedule has a cron equivalent.
func (cv *conv) timer(uf *unitFile) {
	var schedules []string
	var first *entry
	for _, e := range uf.Entries {
		switch {
		case e.Section == "Timer" && e.Key == "OnCalendar":
			if first == nil {
				first = e
			}
			cron, note, ok := calendarToCron(e.Value)
			if !ok {
				cv.warn(e, "", fmt.Sprintf("cannot convert %q to a cron schedule: %s; set the schedule by hand", e.Value, note))
				continue
			}
			schedules = append(schedules, cron)
			msg := "the VM ran it on its local time zone unless the expression names one; a CronJob runs on the controller's (UTC) unless timeZone is set"
			if note != "" {
				msg = note + "; " + msg
			}
			cv.warn(e, "CronJob schedule "+cron, msg)
		case e.Section == "Timer" && (e.Key == "OnUnitActiveSec" || e.Key == "OnUnitInactiveSec"):
			secs, ok := parseSeconds(e.Value)
			cron, cok := intervalToCron(secs)
			if !ok || !cok {
				cv.warn(e, "", "an interval of "+e.Value+" has no exact cron form: set the schedule by hand")
				continue
			}
			schedules = append(schedules, cron)
			cv.warn(e, "CronJob schedule "+cron, "an interval after the last run became fixed clock times; runs no longer drift")
		case e.Section == "Timer" && (e.Key == "OnBootSec" || e.Key == "OnStartupSec" || e.Key == "OnActiveSec"):
			cv.drop(e, "no boot of a cluster to count from: a CronJob runs on a schedule only")
		case e.Section == "Timer" && e.Key == "Persistent":
			if parseBool(e.Value) {
				cv.warn(e, "startingDeadlineSeconds", "runs missed while the VM was off were caught up; a CronJob catches up within startingDeadlineSeconds: set it in values")
			} else {
				cv.mapped(e, "nothing to do")
			}
		case e.Section == "Timer" && (e.Key == "RandomizedDelaySec" || e.Key == "AccuracySec" || e.Key == "FixedRandomDelay"):
			cv.drop(e, "a CronJob starts at the scheduled minute: spread jobs by choosing different minutes")
		case e.Section == "Timer" && e.Key == "Unit":
			cv.mapped(e, "this service")
		case e.Section == "Timer" && (e.Key == "WakeSystem" || e.Key == "RemainAfterElapse" || e.Key == "OnClockChange" || e.Key == "OnTimezoneChange"):
			cv.drop(e, "no counterpart on a cluster")
		case e.Section == "Install":
			cv.drop(e, "enablement at boot: on Kubernetes a CronJob runs when it is deployed")
		case e.Section == "Unit" && (e.Key == "Description" || e.Key == "Documentation"):
			cv.drop(e, "kept in the report only")
		default:
			cv.drop(e, "cutover does not map this key")
		}
		e.used = true
	}
	switch {
	case len(schedules) == 1:
		cv.svc.Kind = service.KindCron
		cv.svc.Schedule = schedules[0]
	case len(schedules) > 1:
		cv.svc.Kind = service.KindCron
		cv.svc.Schedule = schedules[0]
		cv.svc.Report.Warn(uf.Path, first.Line, "Timer", "CronJob schedule "+schedules[0], fmt.Sprintf("the timer has %d schedules; a CronJob has one: the first was kept, add CronJobs for %s by hand", len(schedules), strings.Join(schedules[1:], ", ")))
	default:
		cv.svc.Report.Warn(uf.Path, 1, "Timer", "Job", "no schedule could be converted: the service is a Job; schedule it by hand")
		if cv.svc.Kind != service.KindJob {
			cv.svc.Kind = service.KindJob
		}
	}
}

// intervalToCron turns a fixed interval into a cron schedule when it
// divides an hour or a day evenly.
func intervalToCron(secs float64) (string, bool) {
	s := int(secs)
	if float64(s) != secs || s <= 0 || s%60 != 0 {
		return "", false
	}
	m := s / 60
	switch {
	case m < 60 && 60%m == 0:
		if m == 1 {
			return "* * * * *", true
		}
		return fmt.Sprintf("*/%d * * * *", m), true
	case m%60 == 0 && m/60 < 24 && 24%(m/60) == 0:
		h := m / 60
		if h == 1 {
			return "0 * * * *", true
		}
		return fmt.Sprintf("0 */%d * * *", h), true
	case m == 1440:
		return "0 0 * * *", true
	}
	return "", false
}

var shorthand = map[string]string{
	"minutely":     "* * * * *",
	"hourly":       "0 * * * *",
	"daily":        "0 0 * * *",
	"weekly":       "0 0 * * 1",
	"monthly":      "0 0 1 * *",
	"yearly":       "0 0 1 1 *",
	"annually":     "0 0 1 1 *",
	"quarterly":    "0 0 1 1,4,7,10 *",
	"semiannually": "0 0 1 1,7 *",
}

var days = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}

var calTimeRe = regexp.MustCompile(`^[0-9*/,.]+:[0-9*/,.]+(:[0-9*/,.]+)?$`)

// calendarToCron converts a systemd calendar expression
// (systemd.time(7)) — "daily", "Mon..Fri *-*-* 09:00", "*-*-* 02:30:00",
// "*:0/15" — to a five-field cron schedule. note explains an
// approximation (seconds dropped, a time zone).
func calendarToCron(expr string) (cron, note string, ok bool) {
	expr = strings.TrimSpace(expr)
	if c, ok := shorthand[strings.ToLower(expr)]; ok {
		return c, "", true
	}
	fields := strings.Fields(expr)
	var notes []string
	if n := len(fields); n > 1 {
		last := fields[n-1]
		if last == "UTC" || strings.Contains(last, "/") && !strings.ContainsAny(last, "*:-0123456789") {
			notes = append(notes, "time zone "+last+" (set the CronJob's timeZone to it)")
			fields = fields[:n-1]
		}
	}
	dow := "*"
	if len(fields) > 0 && !strings.ContainsAny(fields[0][:1], "0123456789*") {
		d, ok := weekdays(fields[0])
		if !ok {
			return "", "unreadable weekday " + fields[0], false
		}
		dow = d
		fields = fields[1:]
	}
	date, clock := "*-*-*", "00:00:00"
	switch len(fields) {
	case 0:
	case 1:
		if calTimeRe.MatchString(fields[0]) {
			clock = fields[0]
		} else {
			date = fields[0]
		}
	case 2:
		date, clock = fields[0], fields[1]
	default:
		return "", "too many parts", false
	}
	dparts := strings.Split(date, "-")
	if len(dparts) == 2 {
		dparts = append([]string{"*"}, dparts...)
	}
	if len(dparts) != 3 || dparts[0] != "*" && !isNumeric(dparts[0]) {
		return "", "unreadable date " + date, false
	}
	if dparts[0] != "*" {
		return "", "a fixed year has no cron form", false
	}
	tparts := strings.Split(clock, ":")
	if len(tparts) == 2 {
		tparts = append(tparts, "00")
	}
	if len(tparts) != 3 {
		return "", "unreadable time " + clock, false
	}
	if tparts[2] != "00" && tparts[2] != "0" {
		notes = append(notes, "seconds "+tparts[2]+" dropped (cron counts minutes)")
	}
	var out []string
	for i, p := range []struct {
		v        string
		min, max int
	}{{tparts[1], 0, 59}, {tparts[0], 0, 23}, {dparts[2], 1, 31}, {dparts[1], 1, 12}} {
		f, ok := cronField(p.v, p.min, p.max)
		if !ok {
			return "", fmt.Sprintf("unreadable part %q", p.v), false
		}
		out = append(out, f)
		_ = i
	}
	out = append(out, dow)
	return strings.Join(out, " "), strings.Join(notes, "; "), true
}

// cronField converts one calendar component: "*", "5", "1,15", "0/15",
// "1..5", "*/10".
func cronField(v string, min, max int) (string, bool) {
	if v == "*" {
		return "*", true
	}
	var parts []string
	for _, p := range strings.Split(v, ",") {
		base, step, hasStep := strings.Cut(p, "/")
		lo, hi, isRange := strings.Cut(base, "..")
		num := func(s string) (int, bool) {
			n, err := strconv.Atoi(s)
			return n, err == nil && n >= min && n <= max
		}
		switch {
		case hasStep:
			st, err := strconv.Atoi(step)
			if err != nil || st <= 0 {
				return "", false
			}
			if base == "*" {
				parts = append(parts, fmt.Sprintf("*/%d", st))
				continue
			}
			n, ok := num(base)
			if !ok {
				return "", false
			}
			if n == min {
				parts = append(parts, fmt.Sprintf("*/%d", st))
				continue
			}
			parts = append(parts, fmt.Sprintf("%d-%d/%d", n, max, st))
		case isRange:
			a, ok1 := num(lo)
			b, ok2 := num(hi)
			if !ok1 || !ok2 || a > b {
				return "", false
			}
			parts = append(parts, fmt.Sprintf("%d-%d", a, b))
		default:
			n, ok := num(base)
			if !ok {
				return "", false
			}
			parts = append(parts, strconv.Itoa(n))
		}
	}
	return strings.Join(parts, ","), true
}

// weekdays converts "Mon..Fri", "Sat,Sun", "Mon" to cron day-of-week.
func weekdays(s string) (string, bool) {
	var out []string
	for _, p := range strings.Split(strings.ToLower(s), ",") {
		lo, hi, isRange := strings.Cut(p, "..")
		if !isRange {
			lo, hi, isRange = strings.Cut(p, "-")
		}
		a, ok := days[lo]
		if !ok {
			return "", false
		}
		if !isRange {
			out = append(out, strconv.Itoa(a))
			continue
		}
		b, ok := days[hi]
		if !ok {
			return "", false
		}
		if a <= b {
			out = append(out, fmt.Sprintf("%d-%d", a, b))
		} else {
			out = append(out, fmt.Sprintf("%d-6,0-%d", a, b))
		}
	}
	return strings.Join(out, ","), true
}
