package haproxy

import (
	"fmt"
	"math"
	"sort"
)

// maxWeight is the largest weight HAProxy's runtime API takes for a server
// ("Absolute weight can only be between 0 and 256 inclusive").
const maxWeight = 256

// splitBudget bounds the work of the weight search (server weights
// distributed per candidate). It keeps a step fast with thousands of
// servers; below it the search is exhaustive, which covers every backend
// of up to about a hundred servers per side.
const splitBudget = 4_000_000

// share is the new side's percentage that HAProxy really sends for side
// totals wn (new) and wl (legacy), rounded half up: what Weights reports.
// ok is false when both are zero (HAProxy has no server to send to).
func share(wn, wl int) (pct int, ok bool) {
	t := wn + wl
	if t <= 0 {
		return 0, false
	}
	return (200*wn + t) / (2 * t), true
}

// split computes the weight of every server so that the new side gets pct
// percent of the requests.
//
// HAProxy's weighted algorithms send each server weight/Σweights of the
// requests, so the new side's share is Wn/(Wn+Wl), the sums of the two
// sides' weights. The split is chosen in this order:
//
//  1. every server that is meant to take traffic gets a weight of 1..256;
//  2. the share is exact (Wn/(Wn+Wl) = pct/100) when integers allow, and
//     otherwise as close as they allow, and always reads back as pct;
//  3. within a side, servers keep the proportions of their configured
//     (initial) weights as closely as integers allow, so a bigger machine
//     keeps its bigger share; a side whose configured weights are all 0
//     is split evenly;
//  4. the smallest weights that do all that, so `get weight` stays
//     readable (90/10 with one server a side is 9 and 1).
//
// At 0 % and 100 % the side that takes all traffic goes back to its
// configured weights (1 each when they are all 0) and the other to 0: a
// static algorithm takes nothing else.
func split(pct int, legacyInit, newInit []int) (legacy, newer []int, err error) {
	if pct < 0 || pct > 100 {
		return nil, nil, fmt.Errorf("new share %d%% is outside 0..100", pct)
	}
	if len(legacyInit) == 0 || len(newInit) == 0 {
		return nil, nil, fmt.Errorf("each side needs at least one server")
	}
	switch pct {
	case 0:
		return full(legacyInit), make([]int, len(newInit)), nil
	case 100:
		return make([]int, len(legacyInit)), full(newInit), nil
	}
	pl, pn := proportions(legacyInit), proportions(newInit)
	kl, kn := positive(pl), positive(pn)
	// g reduces pct/(100-pct): the exact side totals are multiples of a
	// (new) and b (legacy).
	g := gcd(pct, 100-pct)
	a, b := pct/g, (100-pct)/g

	var best *candidate
	budget := splitBudget
	consider := func(wn, wl int) {
		budget -= len(pn) + len(pl)
		c, ok := build(pct, wn, wl, pn, pl)
		if ok && (best == nil || c.better(best)) {
			best = &c
		}
	}
	// Exact totals first: Wn = m·a, Wl = m·b.
	for m := 1; m*a <= maxWeight*kn && m*b <= maxWeight*kl && budget > 0; m++ {
		if m*a < kn || m*b < kl {
			continue // some server that should take traffic would get 0
		}
		consider(m*a, m*b)
		if best != nil && best.dev == 0 {
			break // exact and even: any larger m only grows the weights
		}
	}
	if best == nil {
		// No exact split gives every server a weight (1 % over three new
		// servers against one legacy server at most 256): take the closest
		// one that still reads back as pct.
		for wn := kn; wn <= maxWeight*kn && budget > 0; wn++ {
			ideal := float64(wn) * float64(100-pct) / float64(pct)
			lo := int(math.Floor(ideal))
			for _, wl := range []int{lo, lo + 1} {
				wl = max(kl, min(wl, maxWeight*kl))
				consider(wn, wl)
			}
		}
	}
	if best == nil {
		return nil, nil, fmt.Errorf("cannot send %d%% to %d new server(s) against %d legacy server(s): a server's weight is at most %d, so some server would get none; put fewer servers on the smaller side", pct, kn, kl, maxWeight)
	}
	return best.legacy, best.newer, nil
}

// candidate is one way to split the weights.
type candidate struct {
	legacy, newer []int
	// errNum/errDen is |Wn/(Wn+Wl) - pct/100| · 100, kept as a fraction
	// so exactness is compared without rounding.
	errNum, errDen int
	// dev is the largest deviation, within a side, of a server's share of
	// that side from its configured proportion.
	dev   float64
	total int
}

func (c candidate) better(o *candidate) bool {
	if l, r := c.errNum*o.errDen, o.errNum*c.errDen; l != r {
		return l < r
	}
	if math.Abs(c.dev-o.dev) > 1e-12 {
		return c.dev < o.dev
	}
	return c.total < o.total
}

func build(pct, wn, wl int, pn, pl []int) (candidate, bool) {
	if got, ok := share(wn, wl); !ok || got != pct {
		return candidate{}, false
	}
	newer, dn, ok := distribute(wn, pn)
	if !ok {
		return candidate{}, false
	}
	legacy, dl, ok := distribute(wl, pl)
	if !ok {
		return candidate{}, false
	}
	num := 100*wn - pct*(wn+wl)
	if num < 0 {
		num = -num
	}
	return candidate{legacy: legacy, newer: newer, errNum: num, errDen: wn + wl, dev: math.Max(dn, dl), total: wn + wl}, true
}

// distribute splits total over servers as close to their proportions
// prop as the bounds allow: a server with a positive proportion gets
// 1..maxWeight, one with proportion 0 gets 0. It fails when the bounds
// cannot hold total. dev is the largest gap between a server's share of
// the side and its proportion.
func distribute(total int, prop []int) ([]int, float64, bool) {
	sum, lo, hi := 0, 0, 0
	for _, p := range prop {
		sum += p
		if p > 0 {
			lo++
			hi += maxWeight
		}
	}
	if sum == 0 || total < lo || total > hi {
		return nil, 0, false
	}
	out := make([]int, len(prop))
	given := 0
	for i, p := range prop {
		if p > 0 {
			out[i] = max(1, min(maxWeight, total*p/sum))
		}
		given += out[i]
	}
	// gap is how far server i is below its ideal share, in units of 1/sum:
	// the next unit goes to the largest gap, the next one taken back from
	// the smallest; ties go to the earlier server, so the split is
	// deterministic (and idempotent).
	gap := func(i int) int { return total*prop[i] - out[i]*sum }
	order := make([]int, 0, len(prop))
	for given != total {
		order = order[:0]
		for i, p := range prop {
			if p > 0 && ((given < total && out[i] < maxWeight) || (given > total && out[i] > 1)) {
				order = append(order, i)
			}
		}
		if given < total {
			sort.SliceStable(order, func(x, y int) bool { return gap(order[x]) > gap(order[y]) })
		} else {
			sort.SliceStable(order, func(x, y int) bool { return gap(order[x]) < gap(order[y]) })
		}
		// One unit per server per round: a round never overshoots, and
		// only clamped splits need more than one.
		for _, j := range order {
			if given == total {
				break
			}
			if given < total {
				out[j]++
				given++
			} else {
				out[j]--
				given--
			}
		}
	}
	dev := 0.0
	for i, p := range prop {
		dev = math.Max(dev, math.Abs(float64(out[i])/float64(total)-float64(p)/float64(sum)))
	}
	return out, dev, true
}

// proportions are the configured weights a side is split by: the initial
// weights, or all 1 when every one of them is 0.
func proportions(init []int) []int {
	if positive(init) > 0 {
		return init
	}
	out := make([]int, len(init))
	for i := range out {
		out[i] = 1
	}
	return out
}

// full is a side's weights when it takes all traffic.
func full(init []int) []int {
	return append([]int(nil), proportions(init)...)
}

func positive(xs []int) int {
	n := 0
	for _, x := range xs {
		if x > 0 {
			n++
		}
	}
	return n
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
