package dispatch

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/coretest"
)

// Subscribers that leave end their consumers at once: before, each kept
// ~3 goroutines (the embedded server's consumer) for the ordered
// consumer's inactivity threshold, 30 s.
func TestFollowersThatLeaveKeepNoGoroutines(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	startDispatcher(t, env, Config{})
	feed, err := NewFeed(env.Conn)
	if err != nil {
		t.Fatal(err)
	}
	// Let the dispatcher and the server settle, then count.
	base := settledGoroutines(0, 2*time.Second)

	const subscribers = 200
	ctx, cancel := context.WithCancel(context.Background())
	chans := make([]<-chan Change, 0, subscribers)
	for i := range subscribers {
		ch, err := feed.FollowAssignee(ctx, fmt.Sprintf("dept-%d", i), 1)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	open := runtime.NumGoroutine()
	if open-base < subscribers {
		t.Fatalf("%d goroutines with %d subscribers, %d before: the test does not see them", open, subscribers, base)
	}
	cancel()
	for _, ch := range chans {
		for range ch { // closed once its follower has ended
		}
	}
	// Well under the 30 s threshold: only a deleted consumer ends in time.
	left := settledGoroutines(base+20, 10*time.Second)
	if left > base+20 {
		t.Fatalf("%d goroutines 10 s after %d subscribers left (%d before, %d while open): their consumers are kept",
			left, subscribers, base, open)
	}
	t.Logf("goroutines: %d before, %d with %d subscribers, %d after they left", base, open, subscribers, left)
}

// settledGoroutines polls runtime.NumGoroutine until it is at most want
// (0: until it stops changing for 200 ms) or within is over, and returns it.
func settledGoroutines(want int, within time.Duration) int {
	deadline := time.Now().Add(within)
	last, stableSince := runtime.NumGoroutine(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n := runtime.NumGoroutine()
		if want > 0 && n <= want {
			return n
		}
		if n != last {
			last, stableSince = n, time.Now()
		} else if want == 0 && time.Since(stableSince) > 200*time.Millisecond {
			return n
		}
	}
	return runtime.NumGoroutine()
}
