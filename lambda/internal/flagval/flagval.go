// Package flagval holds the flag.Value types the event sources' --source
// flags share: durations written as Lambda's settings are (a bare number
// of seconds), AWS CLI timestamps, and a bool that knows whether it was
// given.
package flagval

import (
	"errors"
	"math"
	"strconv"
	"time"
)

// Seconds is a duration flag that also takes a bare number of seconds,
// as Lambda's settings are written; a negative number stays negative
// (Lambda's -1, "no limit"). NaN, infinities and numbers beyond 1e9
// seconds are refused rather than wrapped into some other duration.
type Seconds time.Duration

func (s *Seconds) String() string { return time.Duration(*s).String() }

func (s *Seconds) Set(v string) error {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(n) || math.IsInf(n, 0) || math.Abs(n) > 1e9 {
			return errors.New("not a duration")
		}
		*s = Seconds(time.Duration(n * float64(time.Second)))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("not a duration (5s, 1m) or a number of seconds")
	}
	*s = Seconds(d)
	return nil
}

// Timestamp takes RFC 3339 or seconds since the epoch, the two forms the
// AWS CLI prints StartingPositionTimestamp in.
type Timestamp time.Time

func (t *Timestamp) String() string { return time.Time(*t).String() }

func (t *Timestamp) Set(v string) error {
	if n, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(n, 0) && !math.IsNaN(n) && math.Abs(n) < 1e11 {
		sec, frac := math.Modf(n)
		*t = Timestamp(time.Unix(int64(sec), int64(frac*1e9)).UTC())
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700"} {
		if x, err := time.Parse(layout, v); err == nil {
			*t = Timestamp(x)
			return nil
		}
	}
	return errors.New("not an RFC 3339 time or seconds since the epoch")
}
