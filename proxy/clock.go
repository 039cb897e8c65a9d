package proxy

import "time"

// The hot path keeps time as monotonic nanoseconds since process start:
// cheaper to store and compare than time.Time, and immune to wall-clock
// steps.
var clockBase = time.Now()

func nanotime() int64 { return int64(time.Since(clockBase)) }

func clockTime(n int64) time.Time { return clockBase.Add(time.Duration(n)) }

// clockOf converts a time.Time (with or without a monotonic reading) to
// the clock.
func clockOf(t time.Time) int64 { return int64(t.Sub(clockBase)) }
