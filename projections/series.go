package projections

import (
	"math/bits"
	"slices"
	"sort"
)

// series is one key's day buckets, sorted by day, and a Fenwick tree over
// them. The day buckets are the state (snapshots and Diff read them); the
// tree is derived from them and rebuilt on restore. It makes a query over any
// window cost O(log days) merges, prefix(to) - prefix(from): every counter
// and every histogram bin is a sum, so a window is a difference of prefixes,
// and a year costs no more than a day.
type series struct {
	days    []int32
	buckets []*bucket
	tree    fenwick
}

func (s *series) find(d int32) (int, bool) {
	k := sort.Search(len(s.days), func(k int) bool { return s.days[k] >= d })
	return k, k < len(s.days) && s.days[k] == d
}

// cell returns day d's place in the series, creating its bucket. Cohorts
// arrive mostly in day order, so creating is almost always an append; the
// tree grows by doubling, so rebuilding it is rare.
func (s *series) cell(d int32) cell {
	k, ok := s.find(d)
	if ok {
		return cell{s, d, s.buckets[k]}
	}
	b := &bucket{}
	s.days = slices.Insert(s.days, k, d)
	s.buckets = slices.Insert(s.buckets, k, b)
	if !s.tree.covers(d) {
		s.rebuild()
	}
	return cell{s, d, b}
}

// rebuild makes a tree that covers every day of the series, with room to
// grow forward as much again, from the day buckets.
func (s *series) rebuild() {
	if len(s.days) == 0 {
		s.tree = fenwick{}
		return
	}
	lo, hi := s.days[0], s.days[len(s.days)-1]
	size := 1
	for size < 2*int(hi-lo+1) {
		size <<= 1
	}
	s.tree = fenwick{base: lo, nodes: make([]*bucket, size+1)}
	for k, d := range s.days {
		b := s.buckets[k]
		for i := s.tree.leaf(d); i < len(s.tree.nodes); i += i & -i {
			s.tree.node(i).mergeFrom(b)
		}
	}
}

// fenwick is a binary indexed tree over days: node i (from 1) holds the sum
// of the days base+i-lowbit(i) .. base+i-1. Nodes under which nothing was
// counted stay nil. Memory is about twice the day buckets': a node at height
// h sums 2^h days, and its histograms hold at most the bins those days hit.
type fenwick struct {
	base  int32
	nodes []*bucket
}

func (f *fenwick) covers(d int32) bool {
	off := int64(d) - int64(f.base)
	return off >= 0 && off < int64(len(f.nodes)-1)
}

// leaf is the node index of day d (covered).
func (f *fenwick) leaf(d int32) int { return int(d-f.base) + 1 }

func (f *fenwick) node(i int) *bucket {
	if f.nodes[i] == nil {
		f.nodes[i] = &bucket{}
	}
	return f.nodes[i]
}

// height is how many nodes a prefix sums at most.
func (f *fenwick) height() int { return bits.Len(uint(len(f.nodes))) }

// addPrefix adds sign times the sum of the days before d to the
// accumulators.
func (f *fenwick) addPrefix(d int64, sign int64, n *counts, report, closing *histAcc) {
	k := d - int64(f.base)
	if k <= 0 {
		return
	}
	k = min(k, int64(len(f.nodes)-1))
	for i := int(k); i > 0; i -= i & -i {
		if b := f.nodes[i]; b != nil {
			for j, v := range b.n {
				n[j] += sign * v
			}
			report.merge(&b.report, sign)
			closing.merge(&b.close, sign)
		}
	}
}

// cell is one day bucket of a series: what it counts goes to the bucket and
// to the tree nodes above it.
type cell struct {
	sr  *series
	day int32
	b   *bucket
}

func (c cell) count(i counter, d int64) {
	c.b.n[i] += d
	f := &c.sr.tree
	for k := f.leaf(c.day); k < len(f.nodes); k += k & -k {
		f.node(k).n[i] += d
	}
}

func (c cell) addCounts(n *counts) {
	for i, v := range n {
		if v != 0 {
			c.count(counter(i), v)
		}
	}
}

func (c cell) report(seconds float64) {
	bin := binOf(seconds)
	c.b.report.inc(bin)
	f := &c.sr.tree
	for k := f.leaf(c.day); k < len(f.nodes); k += k & -k {
		f.node(k).report.inc(bin)
	}
}

func (c cell) close(seconds float64) {
	bin := binOf(seconds)
	c.b.close.inc(bin)
	f := &c.sr.tree
	for k := f.leaf(c.day); k < len(f.nodes); k += k & -k {
		f.node(k).close.inc(bin)
	}
}

func (b *bucket) mergeFrom(o *bucket) {
	for i, v := range o.n {
		b.n[i] += v
	}
	b.report.mergeFrom(&o.report)
	b.close.mergeFrom(&o.close)
}
