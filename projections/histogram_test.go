package projections

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestHistogramRelativeError: merged histograms answer nearest-rank
// quantiles within 2% of the exact sample, over durations from milliseconds
// to months, and below the smallest tracked duration as 0.
func TestHistogramRelativeError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		parts := make([]histogram, 1+r.IntN(30))
		var samples []float64
		for range 1 + r.IntN(2000) {
			v := math.Exp(r.NormFloat64()*3 + 7) // median ~18 minutes, wide
			if r.IntN(20) == 0 {
				v = 0
			}
			samples = append(samples, v)
			parts[r.IntN(len(parts))].inc(binOf(v))
		}
		// Merge some parts into others first, as tree nodes do.
		var whole histogram
		for i := range parts {
			whole.mergeFrom(&parts[i])
		}
		acc := newHistAcc()
		acc.merge(&whole, 1)
		for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 1} {
			want, _ := nearestRank(samples, q)
			got := acc.quantile(q)
			if !closeTo(got, &want, histAlpha+1e-9, 0.001) {
				t.Fatalf("trial %d q %v: got %v, exact %v", trial, q, *got, want)
			}
		}
		if whole.count() != uint64(len(samples)) {
			t.Fatalf("count %d, %d samples", whole.count(), len(samples))
		}
	}
	acc := newHistAcc()
	if acc.quantile(0.5) != nil {
		t.Error("an empty window has a median")
	}
	var h histogram
	for _, v := range []float64{-5, math.NaN(), 0.0001, 1e30} {
		h.inc(binOf(v))
	}
	acc.merge(&h, 1)
	if got := *acc.quantile(0.5); got != 0 {
		t.Errorf("median of negative, NaN and tiny durations: %v, want 0", got)
	}
	if got := *acc.quantile(1); math.Abs(got-histMaxSeconds)/histMaxSeconds > histAlpha {
		t.Errorf("a huge duration reads %v, want it capped near %v", got, histMaxSeconds)
	}
	// Subtracting what was added leaves nothing.
	acc.merge(&h, -1)
	if acc.quantile(0.5) != nil {
		t.Error("a prefix minus itself is not empty")
	}
}
