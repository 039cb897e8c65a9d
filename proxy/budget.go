package proxy

import (
	"sync/atomic"
	"time"
)

// retryBudget bounds replays to a share of the request rate plus a floor
// per second, over a sliding second made of ten 100 ms slots, so that a
// failing new side cannot double the load on legacy. Counting is
// lock-free; a slot is recycled by whoever first sees it stale, which can
// lose a few counts at a slot boundary: harmless for a budget.
type retryBudget struct {
	ratio float64
	floor int64
	slots [budgetSlots]budgetSlot
}

const (
	budgetSlots = 10
	budgetSlot_ = 100 * time.Millisecond
)

type budgetSlot struct {
	epoch    atomic.Int64
	requests atomic.Int64
	retries  atomic.Int64
}

func (rb *retryBudget) slot(now int64) *budgetSlot {
	e := now / int64(budgetSlot_)
	s := &rb.slots[e%budgetSlots]
	if old := s.epoch.Load(); old != e && old < e && s.epoch.CompareAndSwap(old, e) {
		s.requests.Store(0)
		s.retries.Store(0)
	}
	return s
}

// request counts one client request.
func (rb *retryBudget) request(now int64) { rb.slot(now).requests.Add(1) }

// allow takes one retry from the budget if there is one left.
func (rb *retryBudget) allow(now int64) bool {
	e := now / int64(budgetSlot_)
	var reqs, rets int64
	for i := range rb.slots {
		s := &rb.slots[i]
		if ep := s.epoch.Load(); ep > e-budgetSlots && ep <= e {
			reqs += s.requests.Load()
			rets += s.retries.Load()
		}
	}
	if float64(rets) >= float64(rb.floor)+rb.ratio*float64(reqs) {
		return false
	}
	rb.slot(now).retries.Add(1)
	return true
}
