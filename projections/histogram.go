package projections

import (
	"math"
	"sort"
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

// add counts one duration.
func (h *histogram) add(seconds float64) {
	if !(seconds >= histMinSeconds) { // also NaN and negative (clock skew)
		h.zero++
		return
	}
	seconds = math.Min(seconds, histMaxSeconds)
	i := binIndex(seconds)
	k := sort.Search(len(h.bins), func(k int) bool { return h.bins[k].idx >= i })
	if k < len(h.bins) && h.bins[k].idx == i {
		h.bins[k].n++
		return
	}
	h.bins = append(h.bins, histBin{})
	copy(h.bins[k+1:], h.bins[k:])
	h.bins[k] = histBin{idx: i, n: 1}
}

// count returns the number of durations held.
func (h *histogram) count() uint64 {
	n := h.zero
	for _, b := range h.bins {
		n += uint64(b.n)
	}
	return n
}

// histAcc merges histograms densely to answer quantiles over a window.
type histAcc struct {
	zero, total uint64
	counts      []uint64 // index: bin idx - histMinIdx
}

func newHistAcc() *histAcc { return &histAcc{counts: make([]uint64, histBins)} }

func (a *histAcc) reset() {
	a.zero, a.total = 0, 0
	clear(a.counts)
}

func (a *histAcc) merge(h *histogram) {
	a.zero += h.zero
	a.total += h.zero
	for _, b := range h.bins {
		a.counts[int(b.idx-histMinIdx)] += uint64(b.n)
		a.total += uint64(b.n)
	}
}

// quantile returns the nearest-rank q-quantile (the ceil(q*n)-th smallest
// duration) within histAlpha, rounded to the millisecond, or nil when the
// window holds no duration.
func (a *histAcc) quantile(q float64) *float64 {
	if a.total == 0 {
		return nil
	}
	rank := uint64(math.Ceil(q * float64(a.total)))
	if rank < 1 {
		rank = 1
	}
	v := 0.0
	if rank > a.zero {
		seen := a.zero
		for k, n := range a.counts {
			seen += n
			if seen >= rank {
				v = binValue(int16(k) + histMinIdx)
				break
			}
		}
	}
	v = math.Round(v*1000) / 1000
	return &v
}
