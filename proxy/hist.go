package proxy

import (
	"math/bits"
	"time"
)

// Latency histograms are log-linear, like HdrHistogram: each power of two
// from 1.024 µs up to 2^36 ns (about 69 s) is split into 2^subBits equal
// buckets, so a bucket is at most 1/2^subBits of its value wide. Bucket 0
// holds everything below 1.024 µs and the last bucket everything above the
// range. The index is a few bit operations, so recording is one atomic
// add.
const (
	histMinExp = 10 // 2^10 ns = 1.024 µs
	histMaxExp = 35 // the last full octave starts at 2^35 ns ≈ 34 s

	// The cumulative histograms (exposed to Prometheus) use 64 buckets per
	// octave: ≤ 1.6 % wide, ≤ 0.8 % error at the bucket middle.
	cumSubBits = 6
	cumBuckets = 1 + (histMaxExp-histMinExp+1)<<cumSubBits
	// The windowed histograms use 32 per octave (≤ 3.1 % wide, ≤ 1.6 %
	// error) so that ten minutes of 100 ms slots stay a few MiB.
	winSubBits = 5
	winBuckets = 1 + (histMaxExp-histMinExp+1)<<winSubBits
)

// histIndex returns the bucket of v nanoseconds.
func histIndex(v int64, subBits uint) int {
	if v < 1<<histMinExp {
		return 0
	}
	e := bits.Len64(uint64(v)) - 1
	if e > histMaxExp {
		return 1 + (histMaxExp-histMinExp+1)<<subBits - 1
	}
	sub := int(v>>(uint(e)-subBits)) & (1<<subBits - 1)
	return 1 + (e-histMinExp)<<subBits + sub
}

// histBounds returns the lower bound and width in nanoseconds of bucket i.
func histBounds(i int, subBits uint) (lo, width int64) {
	if i == 0 {
		return 0, 1 << histMinExp
	}
	k := i - 1
	e := k>>subBits + histMinExp
	sub := int64(k & (1<<subBits - 1))
	width = 1 << (uint(e) - subBits)
	lo = (1<<subBits + sub) * width
	return lo, width
}

// histQuantiles returns the q-quantiles (ascending qs) of counts, at the
// middle of the bucket holding each rank.
func histQuantiles(counts []uint64, subBits uint, qs []float64, out []time.Duration) {
	var total uint64
	for _, c := range counts {
		total += c
	}
	for i := range out {
		out[i] = 0
	}
	if total == 0 {
		return
	}
	var cum uint64
	j := 0
	for i, c := range counts {
		if c == 0 {
			continue
		}
		cum += c
		for j < len(qs) {
			rank := uint64(qs[j]*float64(total) + 0.5)
			if rank < 1 {
				rank = 1
			}
			if cum < rank {
				break
			}
			lo, w := histBounds(i, subBits)
			out[j] = time.Duration(lo + w/2)
			j++
		}
		if j == len(qs) {
			return
		}
	}
}
