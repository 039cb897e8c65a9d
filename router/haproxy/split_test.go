package haproxy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestSplitExamples(t *testing.T) {
	for _, c := range []struct {
		name                  string
		pct                   int
		legacyInit, newInit   []int
		wantLegacy, wantNewer []int
	}{
		{"one a side, 90/10 reduced", 10, []int{1}, []int{1}, []int{9}, []int{1}},
		{"one a side, configured weights do not scale the result", 10, []int{100}, []int{100}, []int{9}, []int{1}},
		{"50/50, two legacy against one new", 50, []int{1, 1}, []int{1}, []int{1, 1}, []int{2}},
		{"33 % over three new and two legacy, even within each side", 33, []int{1, 1}, []int{1, 1, 1}, []int{67, 67}, []int{22, 22, 22}},
		{"a bigger legacy machine keeps its bigger share", 10, []int{100, 50}, []int{1}, []int{6, 3}, []int{1}},
		{"new servers configured at weight 0 are split evenly", 25, []int{1}, []int{0, 0}, []int{6}, []int{1, 1}},
		{"a server configured at 0 stays out", 50, []int{1, 0}, []int{1}, []int{1, 0}, []int{1}},
		{"0 % restores legacy's configured weights", 0, []int{100, 50}, []int{7, 7}, []int{100, 50}, []int{0, 0}},
		{"100 % with new at weight 0 gives each new server 1", 100, []int{10}, []int{0, 0}, []int{0}, []int{1, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, n, err := split(c.pct, c.legacyInit, c.newInit)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(l, c.wantLegacy) || !reflect.DeepEqual(n, c.wantNewer) {
				t.Fatalf("split(%d, %v, %v) = %v, %v; want %v, %v", c.pct, c.legacyInit, c.newInit, l, n, c.wantLegacy, c.wantNewer)
			}
		})
	}
}

// TestSplitEveryPercent checks the promises of split over every
// percentage and many backend shapes: the share reads back as set, it is
// exact whenever some integer weights make it exact, every server that
// should take traffic gets some, and no weight leaves 0..256.
func TestSplitEveryPercent(t *testing.T) {
	shapes := [][]int{{1}, {1, 1}, {1, 1, 1}, {0, 0}, {100, 50}, {3, 1, 1}, {1, 1, 1, 1, 1, 1, 1}, {256, 1}}
	for _, li := range shapes {
		for _, ni := range shapes {
			for pct := 0; pct <= 100; pct++ {
				l, n, err := split(pct, li, ni)
				if err != nil {
					if pct > 0 && pct < 100 && exactPossible(pct, len(positiveOf(ni)), len(positiveOf(li))) {
						t.Errorf("split(%d, %v, %v): %v, yet an exact split exists", pct, li, ni, err)
					}
					continue
				}
				name := fmt.Sprintf("split(%d, %v, %v) = %v, %v", pct, li, ni, l, n)
				got, ok := share(total(n), total(l))
				if !ok || got != pct {
					t.Fatalf("%s reads back %d%%", name, got)
				}
				for _, ws := range [][]int{l, n} {
					for _, w := range ws {
						if w < 0 || w > maxWeight {
							t.Fatalf("%s: weight %d out of range", name, w)
						}
					}
				}
				if pct == 0 || pct == 100 {
					continue
				}
				for i, p := range proportions(li) {
					if p > 0 && l[i] == 0 {
						t.Fatalf("%s: legacy server %d gets nothing", name, i)
					}
				}
				for i, p := range proportions(ni) {
					if p > 0 && n[i] == 0 {
						t.Fatalf("%s: new server %d gets nothing", name, i)
					}
				}
				exact := 100*total(n) == pct*(total(n)+total(l))
				if !exact && exactPossible(pct, positive(proportions(ni)), positive(proportions(li))) {
					t.Errorf("%s is not exact, yet an exact split exists", name)
				}
			}
		}
	}
}

// exactPossible says, by brute force, whether side totals exist in exact
// proportion with at least one weight unit per server and at most 256.
func exactPossible(pct, kn, kl int) bool {
	for wn := kn; wn <= maxWeight*kn; wn++ {
		if wn*(100-pct)%pct != 0 {
			continue
		}
		if wl := wn * (100 - pct) / pct; wl >= kl && wl <= maxWeight*kl {
			return true
		}
	}
	return false
}

func positiveOf(xs []int) []int {
	var out []int
	for _, x := range proportions(xs) {
		if x > 0 {
			out = append(out, x)
		}
	}
	return out
}

func total(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// TestSplitCloseWhenNotExact: 1 % over three new servers against one
// legacy server capped at 256 cannot be exact; it must still read back
// as 1 %.
func TestSplitCloseWhenNotExact(t *testing.T) {
	l, n, err := split(1, []int{1}, []int{1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l, []int{256}) || !reflect.DeepEqual(n, []int{1, 1, 1}) {
		t.Fatalf("got %v %v, want [256] [1 1 1] (3/259 = 1.16 %%)", l, n)
	}
}

func TestSplitImpossibleSaysWhy(t *testing.T) {
	_, _, err := split(1, []int{1}, make([]int, 300))
	if err == nil || !strings.Contains(err.Error(), "cannot send 1% to 300 new server(s) against 1 legacy server(s)") {
		t.Fatalf("got %v", err)
	}
}

// TestSplitManyServersIsQuick: the search is bounded, so a backend of a
// thousand servers a side still steps at once.
func TestSplitManyServersIsQuick(t *testing.T) {
	li, ni := make([]int, 1000), make([]int, 1000)
	for i := range li {
		li[i], ni[i] = 1+i%7, 1+i%5
	}
	l, n, err := split(37, li, ni)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := share(total(n), total(l)); got != 37 {
		t.Fatalf("reads back %d%%", got)
	}
}
