package jetstream

import "sync"

// tip is what the store last saw at the end of one stream: its length and
// the JetStream sequence of its last commit (0: no commit).
type tip struct {
	next uint64
	seq  uint64
}

// tipCache remembers the tips of recently used streams so that an append to
// a stream that this process wrote or read needs no read before publishing.
// It is only a hint: the server's expected-sequence check decides, and a
// stale entry costs one re-read.
type tipCache struct {
	mu  sync.Mutex
	max int
	m   map[string]tip
}

func newTipCache(max int) *tipCache {
	return &tipCache{max: max, m: make(map[string]tip, min(max, 1024))}
}

func (c *tipCache) get(stream string) (tip, bool) {
	c.mu.Lock()
	t, ok := c.m[stream]
	c.mu.Unlock()
	return t, ok
}

// put records t unless the cache already knows a later commit: a slow reader
// must not roll back what a concurrent append taught it.
func (c *tipCache) put(stream string, t tip) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[stream]; ok {
		if old.seq <= t.seq {
			c.m[stream] = t
		}
		return
	}
	if len(c.m) >= c.max {
		// Evict an arbitrary entry: map order is random, which is good
		// enough for a hint and costs no bookkeeping on the hot path.
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[stream] = t
}

// set records t even over a later commit: t comes from the stream leader,
// which overrules whatever the cache believed (a stream deleted and created
// again starts its sequences anew).
func (c *tipCache) set(stream string, t tip) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[stream]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[stream] = t
}
