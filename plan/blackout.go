package plan

import (
	"fmt"
	"strings"
	"time"
)

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func (b Blackout) validate() error {
	oneOff := !b.From.IsZero() || !b.To.IsZero()
	weekly := b.Start != "" || b.End != "" || len(b.Days) > 0
	switch {
	case oneOff && weekly:
		return fmt.Errorf("set either from/to or days/start/end, not both")
	case oneOff:
		if b.From.IsZero() || b.To.IsZero() || !b.To.After(b.From) {
			return fmt.Errorf("from and to must both be set, to after from")
		}
		return nil
	case weekly:
		if _, err := clock(b.Start); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		if _, err := clock(b.End); err != nil {
			return fmt.Errorf("end: %w", err)
		}
		for _, d := range b.Days {
			if _, ok := weekdays[strings.ToLower(d)[:min(3, len(d))]]; !ok {
				return fmt.Errorf("day %q is not a weekday name", d)
			}
		}
		if _, err := b.location(); err != nil {
			return err
		}
		return nil
	default:
		return fmt.Errorf("empty blackout: set from/to or start/end")
	}
}

func (b Blackout) location() (*time.Location, error) {
	if b.TimeZone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(b.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("timeZone %q: %w", b.TimeZone, err)
	}
	return loc, nil
}

// clock parses "HH:MM" into minutes after midnight.
func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Active reports whether now is inside the window, and when it ends.
func (b Blackout) Active(now time.Time) (bool, time.Time) {
	if !b.From.IsZero() {
		if !now.Before(b.From) && now.Before(b.To) {
			return true, b.To
		}
		return false, time.Time{}
	}
	loc, err := b.location()
	if err != nil {
		return false, time.Time{}
	}
	start, _ := clock(b.Start)
	end, _ := clock(b.End)
	local := now.In(loc)
	// A window may have started today or, when it spans midnight,
	// yesterday; check both.
	for _, back := range []int{0, 1} {
		day := local.AddDate(0, 0, -back)
		if !b.onDay(day.Weekday()) {
			continue
		}
		y, m, d := day.Date()
		from := time.Date(y, m, d, start/60, start%60, 0, 0, loc)
		to := time.Date(y, m, d, end/60, end%60, 0, 0, loc)
		if !to.After(from) {
			to = to.AddDate(0, 0, 1)
		}
		if !local.Before(from) && local.Before(to) {
			return true, to
		}
	}
	return false, time.Time{}
}

func (b Blackout) onDay(d time.Weekday) bool {
	if len(b.Days) == 0 {
		return true
	}
	for _, name := range b.Days {
		if weekdays[strings.ToLower(name)[:min(3, len(name))]] == d {
			return true
		}
	}
	return false
}

// InBlackout reports whether now is inside any of the plan's blackout
// windows, which one, and when it ends.
func (p *Plan) InBlackout(now time.Time) (bool, string, time.Time) {
	for i, b := range p.Spec.Blackouts {
		if ok, until := b.Active(now); ok {
			name := b.Name
			if name == "" {
				name = fmt.Sprintf("blackouts[%d]", i)
			}
			return true, name, until
		}
	}
	return false, "", time.Time{}
}
