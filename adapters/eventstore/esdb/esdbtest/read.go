package esdbtest

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// message is how a record travels in a read or a subscription.
func (r record) message(structuredIDs bool) *streams.ReadResp {
	id := &shared.UUID{Value: &shared.UUID_String_{String_: r.id.String()}}
	if structuredIDs {
		id = structured(r.id)
	}
	return &streams.ReadResp{Content: &streams.ReadResp_Event{Event: &streams.ReadResp_ReadEvent{
		Event: &streams.ReadResp_ReadEvent_RecordedEvent{
			Id:               id,
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.prepare,
			CommitPosition:   r.commit,
			Metadata: map[string]string{
				"type":         r.typ,
				"content-type": r.contentType,
				"created":      strconv.FormatInt(r.created, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.commit},
	}}}
}

// filter is a server-side filter of $all; nil keeps everything.
type filter func(r *record) bool

func filterOf(f *streams.ReadReq_Options_FilterOptions) (filter, error) {
	if f == nil {
		return nil, nil
	}
	expr, byType := f.GetStreamIdentifier(), false
	if expr == nil {
		expr, byType = f.GetEventType(), true
	}
	if expr == nil {
		return nil, status.Error(codes.InvalidArgument, "filter without a stream or event type expression")
	}
	field := func(r *record) string {
		if byType {
			return r.typ
		}
		return r.stream
	}
	if prefixes := expr.GetPrefix(); len(prefixes) > 0 {
		return func(r *record) bool {
			for _, p := range prefixes {
				if strings.HasPrefix(field(r), p) {
					return true
				}
			}
			return false
		}, nil
	}
	re, err := regexp.Compile(expr.GetRegex())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "filter regex: %v", err)
	}
	return func(r *record) bool { return re.MatchString(field(r)) }, nil
}

func (x *streamsService) Read(req *streams.ReadReq, srv streams.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "no read options")
	}
	structuredIDs := o.GetUuidOption().GetString_() == nil
	match, err := filterOf(o.GetFilter())
	if err != nil {
		return err
	}
	backwards := o.GetReadDirection() == streams.ReadReq_Options_Backwards
	switch {
	case o.GetStream() != nil:
		if o.GetSubscription() != nil {
			return status.Error(codes.Unimplemented, "esdbtest: stream subscriptions are not modelled")
		}
		return x.s.readStream(o.GetStream(), backwards, o.GetCount(), structuredIDs, srv)
	case o.GetAll() != nil:
		if o.GetSubscription() != nil {
			return x.s.subscribeAll(o.GetAll(), match, o.GetFilter(), structuredIDs, srv)
		}
		return x.s.readAll(o.GetAll(), backwards, o.GetCount(), match, structuredIDs, srv)
	}
	return status.Error(codes.InvalidArgument, "neither a stream nor $all")
}

func (s *Server) readStream(o *streams.ReadReq_Options_StreamOptions, backwards bool, count uint64, structuredIDs bool, srv streams.Streams_ReadServer) error {
	name := string(o.GetStreamIdentifier().GetStreamName())
	s.mu.Lock()
	idx := s.streams[name]
	var out []record
	if len(idx) > 0 {
		n := int64(len(idx))
		var from int64
		switch {
		case o.GetStart() != nil:
			from = 0
			if backwards {
				from = -1
			}
		case o.GetEnd() != nil:
			from = n
			if backwards {
				from = n - 1
			}
		default:
			from = int64(o.GetRevision())
			if backwards && from >= n {
				from = n - 1
			}
		}
		step := int64(1)
		if backwards {
			step = -1
		}
		for i := from; i >= 0 && i < n && uint64(len(out)) < count; i += step {
			out = append(out, s.log[idx[i]])
		}
	}
	s.mu.Unlock()
	if len(idx) == 0 {
		return srv.Send(&streams.ReadResp{Content: &streams.ReadResp_StreamNotFound_{StreamNotFound: &streams.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)}}}})
	}
	for _, r := range out {
		if err := srv.Send(r.message(structuredIDs)); err != nil {
			return err
		}
	}
	return nil
}

// errInvalidPosition is the double's answer to a position inside a record;
// EventStoreDB refuses such a read too (its wording varies by version).
func errInvalidPosition(commit, prepare uint64) error {
	return status.Errorf(codes.Unknown, "esdbtest: invalid position %d/%d: no record starts there", commit, prepare)
}

// indexAtLocked returns the index of the first record at or after a
// position, which must be where a record starts (or the end of the log).
func (s *Server) indexAtLocked(p *streams.ReadReq_Options_Position) (int, error) {
	c, pp := p.GetCommitPosition(), p.GetPreparePosition()
	if c < pp {
		return 0, errInvalidPosition(c, pp)
	}
	i := sort.Search(len(s.log), func(i int) bool { return s.log[i].prepare >= pp })
	if pp == s.end || pp == 0 {
		return i, nil
	}
	if i == len(s.log) || s.log[i].prepare != pp {
		return 0, errInvalidPosition(c, pp)
	}
	return i, nil
}

func (s *Server) readAll(o *streams.ReadReq_Options_AllOptions, backwards bool, count uint64, match filter, structuredIDs bool, srv streams.Streams_ReadServer) error {
	s.mu.Lock()
	var out []record
	var from int
	switch {
	case o.GetStart() != nil:
		from = 0
		if backwards {
			from = -1
		}
	case o.GetEnd() != nil:
		from = len(s.log)
		if backwards {
			from = len(s.log) - 1
		}
	default:
		i, err := s.indexAtLocked(o.GetPosition())
		if err != nil {
			s.mu.Unlock()
			return err
		}
		from = i
		if backwards {
			from = i - 1 // backwards from a position: the records before it
		}
	}
	step := 1
	if backwards {
		step = -1
	}
	for i := from; i >= 0 && i < len(s.log) && uint64(len(out)) < count; i += step {
		if match == nil || match(&s.log[i]) {
			out = append(out, s.log[i])
		}
	}
	s.mu.Unlock()
	for _, r := range out {
		if err := srv.Send(r.message(structuredIDs)); err != nil {
			return err
		}
	}
	return nil
}

// subscribeAll serves a catch-up subscription to $all: confirmation, the
// stored events after the start, a checkpoint every window×multiplier
// scanned events when filtered, caught-up, then live events until the
// client leaves or DropSubscriptions.
func (s *Server) subscribeAll(o *streams.ReadReq_Options_AllOptions, match filter, f *streams.ReadReq_Options_FilterOptions, structuredIDs bool, srv streams.Streams_ReadServer) error {
	s.mu.Lock()
	var next int
	switch {
	case o.GetStart() != nil:
		next = 0
	case o.GetEnd() != nil:
		next = len(s.log)
	default:
		i, err := s.indexAtLocked(o.GetPosition())
		if err != nil {
			s.mu.Unlock()
			return err
		}
		next = i
		if i < len(s.log) && s.log[i].prepare == o.GetPosition().GetPreparePosition() {
			next = i + 1 // a subscription starts after its position
		}
	}
	drop := s.drop
	s.mu.Unlock()

	if err := srv.Send(&streams.ReadResp{Content: &streams.ReadResp_Confirmation{Confirmation: &streams.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}
	every := 0
	if f != nil {
		window := int(f.GetMax())
		if window == 0 {
			window = 32
		}
		every = window * max(1, int(f.GetCheckpointIntervalMultiplier()))
	}
	scanned, caughtUp := 0, false
	for {
		s.mu.Lock()
		batch := append([]record(nil), s.log[next:]...)
		changed := s.changed
		s.mu.Unlock()
		next += len(batch)
		for _, r := range batch {
			scanned++
			if match == nil || match(&r) {
				if err := srv.Send(r.message(structuredIDs)); err != nil {
					return err
				}
			}
			if every > 0 && scanned%every == 0 {
				if err := srv.Send(&streams.ReadResp{Content: &streams.ReadResp_Checkpoint_{Checkpoint: &streams.ReadResp_Checkpoint{
					CommitPosition: r.commit, PreparePosition: r.prepare}}}); err != nil {
					return err
				}
			}
		}
		if !caughtUp {
			caughtUp = true
			if err := srv.Send(&streams.ReadResp{Content: &streams.ReadResp_CaughtUp_{CaughtUp: &streams.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-drop:
			return status.Error(codes.Unavailable, "esdbtest: subscription dropped on purpose")
		case <-srv.Context().Done():
			return srv.Context().Err()
		}
	}
}
