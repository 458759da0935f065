package main

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// latencies collects samples; safe for concurrent use.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// quantiles returns the samples' p50, p99 and p999 (nearest rank).
func (l *latencies) quantiles() (p50, p99, p999 time.Duration) {
	l.mu.Lock()
	s := slices.Clone(l.d)
	l.mu.Unlock()
	if len(s) == 0 {
		return 0, 0, 0
	}
	slices.Sort(s)
	q := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return q(0.50), q(0.99), q(0.999)
}

func (l *latencies) String() string {
	p50, p99, p999 := l.quantiles()
	return fmt.Sprintf("p50=%s p99=%s p999=%s (n=%d)", ms(p50), ms(p99), ms(p999), l.count())
}

// ms prints a duration in milliseconds with a precision that suits it.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f < 10 {
		return fmt.Sprintf("%.2fms", f)
	}
	return fmt.Sprintf("%.0fms", f)
}

func msNum(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}
