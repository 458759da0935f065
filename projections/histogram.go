package projections

import (
	"math"
	"slices"
	"sort"
	"sync"
)

// Durations are kept in log-scaled histograms (the DDSketch layout) rather
// than as raw samples: a day bucket holds at most histBins bins whatever the
// number of cases, day buckets merge exactly by adding counts, and every
// quantile read from a merge is within histAlpha relative error of the true
// nearest-rank sample.
const (
	// histAlpha is the relative error bound of a quantile.
	histAlpha = 0.02
	// histMinSeconds: shorter durations (a claim reports in at once) count in
	// the zero bin and read back as 0.
	histMinSeconds = 1e-3
	// histMaxSeconds caps durations (about 31,700 years) so indices stay
	// small.
	histMaxSeconds = 1e12
)

var (
	histGamma    = (1 + histAlpha) / (1 - histAlpha)
	histLogGamma = math.Log(histGamma)
	histMinIdx   = binIndex(histMinSeconds)
	histMaxIdx   = binIndex(histMaxSeconds)
	histBins     = int(histMaxIdx-histMinIdx) + 1
)

// binIndex returns the bin of v (v >= histMinSeconds): bin i holds
// (gamma^(i-1), gamma^i].
func binIndex(v float64) int16 {
	return int16(math.Ceil(math.Log(v) / histLogGamma))
}

// binValue is the value a bin reads back as: the point whose relative
// distance to both ends of the bin is histAlpha.
func binValue(i int16) float64 {
	return 2 * math.Pow(histGamma, float64(i)) / (histGamma + 1)
}

// histBin is one non-empty bin.
type histBin struct {
	idx int16
	n   uint32
}

// histogram is a sparse log-scaled histogram of durations in seconds. Its
// size is bounded by the number of distinct bins hit (at most histBins).
type histogram struct {
	zero uint64
	bins []histBin // sorted by idx, every n > 0
}

// bin is where a duration goes: the zero bin, or bin idx.
type bin struct {
	idx  int16
	zero bool
}

// binOf computes a duration's bin once, for a bucket and the tree nodes
// above it.
func binOf(seconds float64) bin {
	if !(seconds >= histMinSeconds) { // also NaN and negative (clock skew)
		return bin{zero: true}
	}
	return bin{idx: binIndex(math.Min(seconds, histMaxSeconds))}
}

// inc counts one duration of bin b.
func (h *histogram) inc(b bin) {
	if b.zero {
		h.zero++
		return
	}
	k := sort.Search(len(h.bins), func(k int) bool { return h.bins[k].idx >= b.idx })
	if k < len(h.bins) && h.bins[k].idx == b.idx {
		h.bins[k].n++
		return
	}
	h.bins = slices.Insert(h.bins, k, histBin{idx: b.idx, n: 1})
}

// mergeFrom adds every duration of o.
func (h *histogram) mergeFrom(o *histogram) {
	h.zero += o.zero
	if len(o.bins) == 0 {
		return
	}
	out := make([]histBin, 0, len(h.bins)+len(o.bins))
	i, j := 0, 0
	for i < len(h.bins) || j < len(o.bins) {
		switch {
		case j == len(o.bins) || i < len(h.bins) && h.bins[i].idx < o.bins[j].idx:
			out = append(out, h.bins[i])
			i++
		case i == len(h.bins) || o.bins[j].idx < h.bins[i].idx:
			out = append(out, o.bins[j])
			j++
		default:
			out = append(out, histBin{idx: h.bins[i].idx, n: h.bins[i].n + o.bins[j].n})
			i++
			j++
		}
	}
	h.bins = out
}

// count returns the number of durations held.
func (h *histogram) count() uint64 {
	n := h.zero
	for _, b := range h.bins {
		n += uint64(b.n)
	}
	return n
}

// histAcc merges histograms densely to answer quantiles over a window. It
// remembers the range of bins touched, so that resetting and reading cost
// what the window holds, not the whole range of durations.
// Counts are signed: a window is a prefix minus a prefix.
type histAcc struct {
	zero, total int64
	lo, hi      int     // touched bins: counts[lo:hi]; empty when lo >= hi
	counts      []int64 // index: bin idx - histMinIdx
}

func newHistAcc() *histAcc { return &histAcc{counts: make([]int64, histBins)} }

func (a *histAcc) reset() {
	if a.lo < a.hi {
		clear(a.counts[a.lo:a.hi])
	}
	a.zero, a.total, a.lo, a.hi = 0, 0, 0, 0
}

// merge adds sign (1 or -1) times h.
func (a *histAcc) merge(h *histogram, sign int64) {
	a.zero += sign * int64(h.zero)
	a.total += sign * int64(h.zero)
	if len(h.bins) == 0 {
		return
	}
	first, last := int(h.bins[0].idx-histMinIdx), int(h.bins[len(h.bins)-1].idx-histMinIdx)+1
	if a.lo >= a.hi {
		a.lo, a.hi = first, last
	} else {
		a.lo, a.hi = min(a.lo, first), max(a.hi, last)
	}
	for _, b := range h.bins {
		a.counts[int(b.idx-histMinIdx)] += sign * int64(b.n)
		a.total += sign * int64(b.n)
	}
}

// quantile returns the nearest-rank q-quantile (the ceil(q*n)-th smallest
// duration) within histAlpha, rounded to the millisecond, or nil when the
// window holds no duration.
func (a *histAcc) quantile(q float64) *float64 {
	if a.total <= 0 {
		return nil
	}
	rank := int64(math.Ceil(q * float64(a.total)))
	if rank < 1 {
		rank = 1
	}
	v := 0.0
	if rank > a.zero {
		seen := a.zero
		for k := a.lo; k < a.hi; k++ {
			seen += a.counts[k]
			if seen >= rank {
				v = binValue(int16(k) + histMinIdx)
				break
			}
		}
	}
	v = math.Round(v*1000) / 1000
	return &v
}

// accPool recycles the accumulators of queries (two per query, 7 KB each).
var accPool = sync.Pool{New: func() any { return newHistAcc() }}

func getAcc() *histAcc { return accPool.Get().(*histAcc) }

func putAcc(a *histAcc) {
	a.reset()
	accPool.Put(a)
}
