package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// statsFormat names the snapshot encoding; a snapshot of another format is
// refused rather than guessed at.
//
// Format 2 adds the buckets of street × category and street × urgency
// (dimensions street_category and street_urgency). A format 1 snapshot
// lacks them, and they cannot be derived from it: the cases it has
// forgotten counted in them. It is refused (ErrBadSnapshot), so that its
// owner folds the log again from the start, which builds them (the read
// model runner does this with any snapshot it cannot use).
//
// Format 3 counts days in the calendar's time zone, which it names
// (time_zone); format 2 counted UTC days. Only a fold of the log can move
// cases to other days, so a snapshot of format 2, or of another zone, is
// refused likewise.
//
// Format 4 keeps every closed case (callbacks, ratings from the resident's
// link and a second round come after closure; format 3 forgot a case once
// rated) with what it counted of its mediation (dispute), and counts
// callbacks, second rounds and the resident's ratings.
const statsFormat = "whistle-stats/4"

// statsFormatsBefore are the formats statsFormat replaced, with why they
// cannot be restored, for the error that refuses them.
var statsFormatsBefore = map[string]string{
	"whistle-stats/1": "it predates the street_category and street_urgency buckets, which only a fold of the log from the start can build",
	"whistle-stats/2": "it counts UTC days, not the calendar's, and only a fold of the log from the start can move cases to their days",
	"whistle-stats/3": "it forgot the cases once rated, whose callbacks and second rounds only a fold of the log from the start can count",
}

// statsSnap is the whole state of Stats in a canonical order: equal states
// encode to equal bytes.
type statsSnap struct {
	Format   string       `json:"format"`
	TimeZone string       `json:"time_zone"`
	Position uint64       `json:"position"`
	Buckets  []bucketSnap `json:"buckets"`
	Open     []openSnap   `json:"open"`
	Closed   []closedSnap `json:"closed"`
}

type bucketSnap struct {
	Dim    string           `json:"dim"`
	Key    string           `json:"key"`
	Day    string           `json:"day"`
	Counts map[string]int64 `json:"counts"` // zero counters left out
	Report *histSnap        `json:"report_seconds,omitempty"`
	Close  *histSnap        `json:"close_seconds,omitempty"`
}

// histSnap: Bins are [bin index, count] pairs; bin i holds durations in
// (gamma^(i-1), gamma^i] seconds, gamma = 1.02/0.98.
type histSnap struct {
	Zero uint64     `json:"zero,omitempty"`
	Bins [][2]int64 `json:"bins,omitempty"`
}

type openSnap struct {
	CaseID      string           `json:"case_id"`
	Version     uint64           `json:"version"`
	RaisedAt    time.Time        `json:"raised_at"`
	Kind        domain.Kind      `json:"kind"`
	Street      string           `json:"street"`
	Community   string           `json:"community"`
	Category    string           `json:"category"`
	Urgency     string           `json:"urgency"`
	Involved    []string         `json:"involved"`
	Assignments []asgSnap        `json:"assignments"`
	Counted     map[string]int64 `json:"counted"`
}

type asgSnap struct {
	Assignee  string      `json:"assignee"`
	Role      domain.Role `json:"role"`
	Made      time.Time   `json:"made"`
	ReportBy  *time.Time  `json:"report_by,omitempty"`
	ResolveBy *time.Time  `json:"resolve_by,omitempty"`
	Reported  bool        `json:"reported,omitempty"`
	Declined  bool        `json:"declined,omitempty"`
}

type closedSnap struct {
	CaseID    string   `json:"case_id"`
	Version   uint64   `json:"version"`
	Day       string   `json:"day"`
	Street    string   `json:"street"`
	Community string   `json:"community"`
	Category  string   `json:"category"`
	Urgency   string   `json:"urgency"`
	Assignees []string `json:"assignees"`
	Dispute   uint8    `json:"dispute,omitempty"`
}

// MarshalBinary encodes the whole state, with the log position reached, as
// versioned JSON. Equal states encode to equal bytes. The satisfaction
// weights are configuration, not state, and are not included. It holds
// the whole encoding in memory; WriteSnapshot streams the same bytes.
func (s *Stats) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary replaces the whole state (and the position) with a
// snapshot written by MarshalBinary or WriteSnapshot, as ReadSnapshot
// does; nothing may follow it. The weights stay those given to NewStats.
// On error the state is unchanged.
func (s *Stats) UnmarshalBinary(data []byte) error {
	return unmarshalWhole(data, func(dec *json.Decoder) error { return s.ReadSnapshot(dec, nil) })
}

// ReadSnapshot replaces the whole state (and the position) with the
// snapshot dec reads next, written by WriteSnapshot, decoding and restoring
// one record (a bucket, a case) at a time. step, if not nil, is called
// once the snapshot's opening brace is read and after each record, for a
// caller that checksums the bytes as they stream (dec.InputOffset() is
// then where the decoder stands). A snapshot whose members are not in
// WriteSnapshot's order is refused (ErrBadSnapshot). On error the state
// is unchanged; dec is left anywhere.
func (s *Stats) ReadSnapshot(dec *json.Decoder, step func()) error {
	fresh := s.empty()
	if err := fresh.readSnapshot(&snapReader{dec: dec, step: step}); err != nil {
		return err
	}
	s.install(fresh)
	return nil
}

// empty returns empty figures with s's weights, to restore into.
func (s *Stats) empty() *Stats {
	fresh := &Stats{weights: s.weights, days: s.days}
	fresh.reset()
	return fresh
}

// install replaces s's state with fresh's.
func (s *Stats) install(fresh *Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series, s.open, s.closed = fresh.series, fresh.open, fresh.closed
	s.profiles, s.profileIx, s.strs, s.pos = fresh.profiles, fresh.profileIx, fresh.strs, fresh.pos
}

func (s *Stats) readSnapshot(r *snapReader) error {
	err := func() error {
		if err := r.open(); err != nil {
			return err
		}
		var format, zone string
		if err := r.member("format", &format); err != nil {
			return err
		}
		// Refused before the members an older format lacks are looked for.
		if err := checkStatsFormat(format); err != nil {
			return err
		}
		if err := r.member("time_zone", &zone); err != nil {
			return err
		}
		var pos uint64
		if err := r.member("position", &pos); err != nil {
			return err
		}
		if err := s.restoreHead(format, zone, pos); err != nil {
			return err
		}
		if err := r.array("buckets", func(dec *json.Decoder) error {
			var bs bucketSnap
			if err := dec.Decode(&bs); err != nil {
				return err
			}
			return s.restoreBucket(&bs)
		}); err != nil {
			return err
		}
		s.restoreTrees()
		if err := r.array("open", func(dec *json.Decoder) error {
			var o openSnap
			if err := dec.Decode(&o); err != nil {
				return err
			}
			return s.restoreOpen(&o)
		}); err != nil {
			return err
		}
		if err := r.array("closed", func(dec *json.Decoder) error {
			var cs closedSnap
			if err := dec.Decode(&cs); err != nil {
				return err
			}
			return s.restoreClosed(&cs)
		}); err != nil {
			return err
		}
		return r.close()
	}()
	if err != nil {
		return fmt.Errorf("%w: stats: %w", ErrBadSnapshot, err)
	}
	return nil
}

// WriteSnapshot writes the bytes MarshalBinary returns to w, record by
// record, through a buffer of about 64 KiB: the encoding costs that buffer
// and the open and closed cases' entries sorted by id (24 to 32 bytes a
// case), not a copy of the state. It holds the state still (a read lock)
// until it returns, so w should be quick to take the bytes (a file, a
// buffer): a fold waits meanwhile.
func (s *Stats) WriteSnapshot(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := newSnapWriter(w)
	e.raw(`{"format":`)
	e.str(statsFormat)
	e.raw(`,"time_zone":`)
	e.str(s.days.String())
	e.raw(`,"position":`)
	e.uint(s.pos)
	e.raw(`,"buckets":[`)
	n := 0
	for d := range numDims {
		for _, k := range sortedKeys(s.series[d]) {
			sr := s.series[d][k]
			for i, day := range sr.days {
				if n > 0 {
					e.raw(",")
				}
				n++
				b := sr.buckets[i]
				e.raw(`{"dim":`)
				e.str(dimNames[d])
				e.raw(`,"key":`)
				e.str(k)
				e.raw(`,"day":`)
				e.day(day)
				e.raw(`,"counts":`)
				e.counts(&b.n)
				e.hist(`,"report_seconds":`, &b.report)
				e.hist(`,"close_seconds":`, &b.close)
				e.raw("}")
				if e.record(); e.err != nil {
					return e.err
				}
			}
		}
	}
	e.raw(`],"open":[`)
	for i, kv := range sortedEntries(s.open) {
		id, c := kv.k, kv.v
		if i > 0 {
			e.raw(",")
		}
		e.raw(`{"case_id":`)
		e.str(id)
		e.raw(`,"version":`)
		e.uint(c.version)
		e.raw(`,"raised_at":`)
		e.time(c.raisedAt)
		e.raw(`,"kind":`)
		e.str(string(c.kind))
		e.raw(`,"street":`)
		e.str(c.keys[dimStreet])
		e.raw(`,"community":`)
		e.str(c.keys[dimCommunity])
		e.raw(`,"category":`)
		e.str(c.keys[dimCategory])
		e.raw(`,"urgency":`)
		e.str(c.keys[dimUrgency])
		e.raw(`,"involved":`)
		e.strs(c.involved)
		e.raw(`,"assignments":[`)
		for j, a := range c.asgs {
			if j > 0 {
				e.raw(",")
			}
			e.raw(`{"assignee":`)
			e.str(a.assignee)
			e.raw(`,"role":`)
			e.str(string(a.role))
			e.raw(`,"made":`)
			e.time(a.made)
			if !a.reportBy.IsZero() {
				e.raw(`,"report_by":`)
				e.time(a.reportBy)
			}
			if !a.resolveBy.IsZero() {
				e.raw(`,"resolve_by":`)
				e.time(a.resolveBy)
			}
			if a.reported {
				e.raw(`,"reported":true`)
			}
			if a.declined {
				e.raw(`,"declined":true`)
			}
			e.raw("}")
		}
		e.raw(`],"counted":`)
		e.counts(&c.contrib)
		e.raw("}")
		if e.record(); e.err != nil {
			return e.err
		}
	}
	e.raw(`],"closed":[`)
	for i, kv := range sortedEntries(s.closed) {
		id, cc := kv.k, kv.v
		p := &s.profiles[cc.profile]
		if i > 0 {
			e.raw(",")
		}
		e.raw(`{"case_id":`)
		e.str(id)
		e.raw(`,"version":`)
		e.uint(cc.version)
		e.raw(`,"day":`)
		e.day(cc.day)
		e.raw(`,"street":`)
		e.str(p.keys[dimStreet])
		e.raw(`,"community":`)
		e.str(p.keys[dimCommunity])
		e.raw(`,"category":`)
		e.str(p.keys[dimCategory])
		e.raw(`,"urgency":`)
		e.str(p.keys[dimUrgency])
		e.raw(`,"assignees":`)
		e.strs(p.assignees)
		if cc.dispute != 0 {
			e.raw(`,"dispute":`)
			e.uint(uint64(cc.dispute))
		}
		e.raw("}")
		if e.record(); e.err != nil {
			return e.err
		}
	}
	e.raw("]}")
	return e.done()
}

// counterOrder lists the counters by name: the order json.Marshal writes
// the keys of a map.
var counterOrder = func() [numCounters]int {
	var o [numCounters]int
	for i := range o {
		o[i] = i
	}
	slices.SortFunc(o[:], func(a, b int) int { return strings.Compare(counterNames[a], counterNames[b]) })
	return o
}()

// counts writes what countsSnap returns: the counters that are not zero.
func (e *snapWriter) counts(n *counts) {
	e.raw("{")
	first := true
	for _, i := range counterOrder {
		if n[i] == 0 {
			continue
		}
		if !first {
			e.raw(",")
		}
		first = false
		e.str(counterNames[i])
		e.raw(":")
		e.int(n[i])
	}
	e.raw("}")
}

// hist writes the member name (with its leading comma) and what
// histogram.snap returns, or nothing for an empty histogram (omitempty).
func (e *snapWriter) hist(name string, h *histogram) {
	if h.count() == 0 {
		return
	}
	e.raw(name)
	e.raw("{")
	if h.zero != 0 {
		e.raw(`"zero":`)
		e.uint(h.zero)
	}
	if len(h.bins) > 0 {
		if h.zero != 0 {
			e.raw(",")
		}
		e.raw(`"bins":[`)
		for i, b := range h.bins {
			if i > 0 {
				e.raw(",")
			}
			e.raw("[")
			e.int(int64(b.idx))
			e.raw(",")
			e.int(int64(b.n))
			e.raw("]")
		}
		e.raw("]")
	}
	e.raw("}")
}

func countsSnap(n *counts) map[string]int64 {
	m := map[string]int64{}
	for i, v := range n {
		if v != 0 {
			m[counterNames[i]] = v
		}
	}
	return m
}

func countsFrom(m map[string]int64) (counts, error) {
	var n counts
	for k, v := range m {
		i := slices.Index(counterNames[:], k)
		if i < 0 {
			return n, fmt.Errorf("unknown counter %q", k)
		}
		n[i] = v
	}
	return n, nil
}

func (h *histogram) snap() *histSnap {
	if h.count() == 0 {
		return nil
	}
	hs := &histSnap{Zero: h.zero}
	for _, b := range h.bins {
		hs.Bins = append(hs.Bins, [2]int64{int64(b.idx), int64(b.n)})
	}
	return hs
}

func (hs *histSnap) histogram() (histogram, error) {
	var h histogram
	if hs == nil {
		return h, nil
	}
	h.zero = hs.Zero
	for i, b := range hs.Bins {
		if b[0] < int64(histMinIdx) || b[0] > int64(histMaxIdx) || b[1] <= 0 || b[1] > 1<<32-1 {
			return h, fmt.Errorf("histogram bin %v out of range", b)
		}
		if i > 0 && b[0] <= hs.Bins[i-1][0] {
			return h, fmt.Errorf("histogram bins out of order at %v", b)
		}
		h.bins = append(h.bins, histBin{idx: int16(b[0]), n: uint32(b[1])})
	}
	return h, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func timeOr(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func (s *Stats) snapshot() *statsSnap {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &statsSnap{Format: statsFormat, TimeZone: s.days.String(), Position: s.pos, Buckets: []bucketSnap{}, Open: []openSnap{}, Closed: []closedSnap{}}
	for d := range numDims {
		keys := make([]string, 0, len(s.series[d]))
		for k := range s.series[d] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			sr := s.series[d][k]
			for i, day := range sr.days {
				b := sr.buckets[i]
				snap.Buckets = append(snap.Buckets, bucketSnap{
					Dim: dimNames[d], Key: k, Day: dayKey(day), Counts: countsSnap(&b.n),
					Report: b.report.snap(), Close: b.close.snap(),
				})
			}
		}
	}
	for _, id := range sortedKeys(s.open) {
		c := s.open[id]
		o := openSnap{
			CaseID: id, Version: c.version, RaisedAt: c.raisedAt, Kind: c.kind,
			Street: c.keys[dimStreet], Community: c.keys[dimCommunity], Category: c.keys[dimCategory], Urgency: c.keys[dimUrgency],
			Involved: append([]string{}, c.involved...), Assignments: []asgSnap{}, Counted: countsSnap(&c.contrib),
		}
		for _, a := range c.asgs {
			o.Assignments = append(o.Assignments, asgSnap{
				Assignee: a.assignee, Role: a.role, Made: a.made, ReportBy: timePtr(a.reportBy), ResolveBy: timePtr(a.resolveBy),
				Reported: a.reported, Declined: a.declined,
			})
		}
		snap.Open = append(snap.Open, o)
	}
	for _, id := range sortedKeys(s.closed) {
		cc := s.closed[id]
		p := &s.profiles[cc.profile]
		snap.Closed = append(snap.Closed, closedSnap{
			CaseID: id, Version: cc.version, Day: dayKey(cc.day),
			Street: p.keys[dimStreet], Community: p.keys[dimCommunity], Category: p.keys[dimCategory], Urgency: p.keys[dimUrgency],
			Assignees: append([]string{}, p.assignees...), Dispute: cc.dispute,
		})
	}
	return snap
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// keyed is a map's entry.
type keyed[V any] struct {
	k string
	v V
}

// sortedEntries returns m's entries by key: what WriteSnapshot walks, so
// that it reads each value once where the map holds it rather than looking
// every key up again.
func sortedEntries[V any](m map[string]V) []keyed[V] {
	out := make([]keyed[V], 0, len(m))
	for k, v := range m {
		out = append(out, keyed[V]{k, v})
	}
	slices.SortFunc(out, func(a, b keyed[V]) int { return strings.Compare(a.k, b.k) })
	return out
}

// A snapshot is restored into an empty Stats in its order: restoreHead,
// restoreBucket for every bucket, restoreTrees, restoreOpen for every open
// case, restoreClosed for every closed one.

// checkStatsFormat refuses a snapshot of another format, saying why an
// older one cannot be restored.
func checkStatsFormat(format string) error {
	if why, ok := statsFormatsBefore[format]; ok {
		return fmt.Errorf("format %q, want %q: %s", format, statsFormat, why)
	}
	if format != statsFormat {
		return fmt.Errorf("format %q, want %q", format, statsFormat)
	}
	return nil
}

func (s *Stats) restoreHead(format, zone string, pos uint64) error {
	if err := checkStatsFormat(format); err != nil {
		return err
	}
	if zone != s.days.String() {
		return fmt.Errorf("days counted in time zone %q, these figures count them in %q: only a fold of the log can move cases to other days", zone, s.days)
	}
	s.pos = pos
	return nil
}

func (s *Stats) restoreBucket(bs *bucketSnap) error {
	d, ok := parseDim(bs.Dim)
	if !ok {
		return fmt.Errorf("bucket of unknown dimension %q", bs.Dim)
	}
	day, err := parseDayKey(bs.Day)
	if err != nil {
		return fmt.Errorf("bucket %s=%s: %v", bs.Dim, bs.Key, err)
	}
	sr := s.series[d][bs.Key]
	if sr == nil {
		sr = &series{}
		s.series[d][s.strs.get(bs.Key)] = sr
	}
	// Snapshots list a key's days in order; the trees are built once
	// every bucket is in.
	if n := len(sr.days); n > 0 && sr.days[n-1] >= day {
		return fmt.Errorf("bucket %s=%s day=%s is out of order or appears twice", bs.Dim, bs.Key, bs.Day)
	}
	b := &bucket{}
	sr.days = append(sr.days, day)
	sr.buckets = append(sr.buckets, b)
	if b.n, err = countsFrom(bs.Counts); err != nil {
		return fmt.Errorf("bucket %s=%s day=%s: %v", bs.Dim, bs.Key, bs.Day, err)
	}
	if b.report, err = bs.Report.histogram(); err != nil {
		return fmt.Errorf("bucket %s=%s day=%s: %v", bs.Dim, bs.Key, bs.Day, err)
	}
	if b.close, err = bs.Close.histogram(); err != nil {
		return fmt.Errorf("bucket %s=%s day=%s: %v", bs.Dim, bs.Key, bs.Day, err)
	}
	return nil
}

// restoreTrees builds every key's tree once its buckets are in.
func (s *Stats) restoreTrees() {
	for d := range s.series {
		for _, sr := range s.series[d] {
			sr.rebuild()
		}
	}
}

// existing returns a bucket the snapshot holds: an open or closed case
// always counted something in its buckets, so a missing one means the
// snapshot is not one WriteSnapshot wrote.
func (s *Stats) existing(d dim, key string, day int32) (cell, error) {
	if sr := s.series[d][key]; sr != nil {
		if k, ok := sr.find(day); ok {
			return cell{sr, day, sr.buckets[k]}, nil
		}
	}
	return cell{}, fmt.Errorf("no bucket %s=%s day=%s", dimNames[d], key, dayKey(day))
}

func (s *Stats) restoreOpen(o *openSnap) error {
	if _, dup := s.open[o.CaseID]; dup || o.Version == 0 {
		return fmt.Errorf("open case %s appears twice or has version 0", o.CaseID)
	}
	day := dayOf(o.RaisedAt, s.days)
	c := &openCase{version: o.Version, day: day, raisedAt: o.RaisedAt.UTC(), kind: domain.Kind(s.strs.get(string(o.Kind)))}
	c.keys = s.caseKeys(o.Street, o.Community, o.Category, o.Urgency, dayKey(day))
	var err error
	for d := range numCaseDims {
		if c.caseB[d], err = s.existing(dim(d), c.keys[d], day); err != nil {
			return fmt.Errorf("open case %s: %v", o.CaseID, err)
		}
	}
	for _, a := range o.Involved {
		b, err := s.existing(dimAssignee, a, day)
		if err != nil {
			return fmt.Errorf("open case %s: %v", o.CaseID, err)
		}
		c.involved = append(c.involved, s.strs.get(a))
		c.invB = append(c.invB, b)
	}
	for _, a := range o.Assignments {
		c.asgs = append(c.asgs, statAsg{
			assignee: s.strs.get(a.Assignee), role: domain.Role(s.strs.get(string(a.Role))), made: a.Made.UTC(),
			reportBy: timeOr(a.ReportBy), resolveBy: timeOr(a.ResolveBy), reported: a.Reported, declined: a.Declined,
		})
	}
	if c.contrib, err = countsFrom(o.Counted); err != nil {
		return fmt.Errorf("open case %s: %v", o.CaseID, err)
	}
	s.open[o.CaseID] = c
	return nil
}

func (s *Stats) restoreClosed(cs *closedSnap) error {
	if _, dup := s.closed[cs.CaseID]; dup || s.open[cs.CaseID] != nil {
		return fmt.Errorf("closed case %s appears twice", cs.CaseID)
	}
	day, err := parseDayKey(cs.Day)
	if err != nil {
		return fmt.Errorf("closed case %s: %v", cs.CaseID, err)
	}
	keys := s.caseKeys(cs.Street, cs.Community, cs.Category, cs.Urgency, "")
	assignees := make([]string, len(cs.Assignees))
	for i, a := range cs.Assignees {
		assignees[i] = s.strs.get(a)
	}
	if cs.Dispute > disputeResolved|disputeSuccess {
		return fmt.Errorf("closed case %s: dispute %d", cs.CaseID, cs.Dispute)
	}
	s.closed[cs.CaseID] = closedCase{version: cs.Version, day: day, profile: s.internProfile(keys, assignees), dispute: cs.Dispute}
	return nil
}

// diffStats lists every difference between two figure states.
func diffStats(live, replay *Stats) []string {
	a, b := live.snapshot(), replay.snapshot()
	var out []string
	add := func(format string, args ...any) { out = append(out, "stats "+fmt.Sprintf(format, args...)) }
	if a.Position != b.Position {
		add("position: live %d, replay %d", a.Position, b.Position)
	}

	type bkey struct {
		dim      int
		key, day string
	}
	index := func(bs []bucketSnap) map[bkey]*bucketSnap {
		m := make(map[bkey]*bucketSnap, len(bs))
		for i := range bs {
			d, _ := parseDim(bs[i].Dim)
			m[bkey{int(d), bs[i].Key, bs[i].Day}] = &bs[i]
		}
		return m
	}
	la, lb := index(a.Buckets), index(b.Buckets)
	var keys []bkey
	for k := range la {
		keys = append(keys, k)
	}
	for k := range lb {
		if la[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y bkey) int {
		if x.dim != y.dim {
			return x.dim - y.dim
		}
		if c := strings.Compare(x.key, y.key); c != 0 {
			return c
		}
		return strings.Compare(x.day, y.day)
	})
	empty := &bucketSnap{}
	for _, k := range keys {
		x, y := la[k], lb[k]
		where := fmt.Sprintf("%s=%s day=%s", dimNames[k.dim], k.key, k.day)
		switch {
		case y == nil:
			add("%s: only in live", where)
			y = empty
		case x == nil:
			add("%s: only in replay", where)
			x = empty
		}
		for _, name := range counterNames {
			if x.Counts[name] != y.Counts[name] {
				add("%s %s: live %d, replay %d", where, name, x.Counts[name], y.Counts[name])
			}
		}
		diffHist(add, where+" report_seconds", x.Report, y.Report)
		diffHist(add, where+" close_seconds", x.Close, y.Close)
	}

	diffRecords(add, "open case", a.Open, b.Open, func(o openSnap) string { return o.CaseID })
	diffRecords(add, "closed case awaiting rating", a.Closed, b.Closed, func(c closedSnap) string { return c.CaseID })
	return out
}

func diffHist(add func(string, ...any), where string, x, y *histSnap) {
	bins := func(h *histSnap) map[int64]int64 {
		m := map[int64]int64{}
		if h != nil {
			for _, b := range h.Bins {
				m[b[0]] = b[1]
			}
		}
		return m
	}
	zero := func(h *histSnap) uint64 {
		if h == nil {
			return 0
		}
		return h.Zero
	}
	if zx, zy := zero(x), zero(y); zx != zy {
		add("%s under %gs: live %d, replay %d", where, histMinSeconds, zx, zy)
	}
	bx, by := bins(x), bins(y)
	var idx []int64
	for i := range bx {
		idx = append(idx, i)
	}
	for i := range by {
		if _, ok := bx[i]; !ok {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	for _, i := range idx {
		if bx[i] != by[i] {
			add("%s near %.3gs: live %d, replay %d", where, binValue(int16(i)), bx[i], by[i])
		}
	}
}

// diffRecords compares two sorted lists of records by id, showing a differing
// record whole, as JSON.
func diffRecords[T any](add func(string, ...any), what string, a, b []T, id func(T) string) {
	show := func(v T) string {
		j, _ := json.Marshal(v)
		return string(j)
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && id(a[i]) < id(b[j]):
			add("%s %s: live %s, replay none", what, id(a[i]), show(a[i]))
			i++
		case i == len(a) || id(b[j]) < id(a[i]):
			add("%s %s: live none, replay %s", what, id(b[j]), show(b[j]))
			j++
		default:
			if x, y := show(a[i]), show(b[j]); x != y {
				add("%s %s: live %s, replay %s", what, id(a[i]), x, y)
			}
			i++
			j++
		}
	}
}
