// Package esdbtest is a test double of an EventStoreDB server: a gRPC
// server on loopback built on the generated server interfaces of
// github.com/EventStore/EventStore-Client-Go/v4 (protos/streams,
// protos/serverfeatures, protos/gossip), holding its log in memory.
//
// It lets the real client talk to the esdb adapter over the real wire
// format, so that tests exercise the client's encoding of appends and reads,
// its mapping of wrong-expected-version answers to
// esdb.ErrorCodeWrongExpectedVersion, its subscription handling
// (confirmation, catch-up, checkpoints, caught-up, live events, drops) and
// its discovery (server features and, with gossip seeds, gossip), against
// the adapter's own logic.
//
// It is not EventStoreDB. It proves nothing of the server's durability,
// replication, clustering, leader elections, access control, scavenging,
// performance, or its exact behaviour at edge cases beyond those modelled
// here:
//
//   - positions are byte offsets: each event is a record of some size with
//     its own prepare position, the events of one append share one commit
//     position (that of the last), and a read or subscription from a position
//     that is not where a record starts is refused, as EventStoreDB refuses
//     it;
//   - expected revisions NoStream, StreamExists, Any and a revision;
//   - a re-sent append (same event ids at the same expected revision) is
//     answered as done without a position, as EventStoreDB's idempotent
//     writes are, unless Options.NoIdempotency is set;
//   - stream reads forwards and backwards (stream not found as a message),
//     $all reads forwards and backwards, subscriptions to $all with a stream
//     or event-type prefix or regex filter, checkpoints every
//     window×multiplier scanned events, then caught-up and live events;
//   - system events ('$' streams) in the log, as a real $all has.
//
// Delete, Tombstone, BatchAppend, stream subscriptions and persistent
// subscriptions answer Unimplemented.
package esdbtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// MaxAppendSize is the largest append accepted, in bytes of data, metadata
// and type, as EventStoreDB's default.
const MaxAppendSize = 1 << 20

// Options configures a Server.
type Options struct {
	// NoIdempotency makes a re-sent append a plain wrong expected version,
	// so that only the client side recognises it.
	NoIdempotency bool
	// Version is the server version reported by server features. Default
	// "24.10.0".
	Version string
}

// record is one event of the log.
type record struct {
	stream      string
	revision    uint64
	id          uuid.UUID
	typ         string
	contentType string
	data, meta  []byte
	commit      uint64
	prepare     uint64
	created     int64 // .NET ticks (100ns) since the Unix epoch
}

// Server is a running double. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	addr string

	mu      sync.Mutex
	log     []record
	streams map[string][]int // stream → indexes into log
	end     uint64           // the position after the last record
	changed chan struct{}    // closed on each write
	drop    chan struct{}    // closed to drop every subscription
	srv     *grpc.Server
	lis     net.Listener

	loseAcks atomic.Int32
	appends  atomic.Int64
}

// firstPosition is where the double's log starts; EventStoreDB's starts
// with records of its own too.
const firstPosition = 256

// Start starts a double on a free port of 127.0.0.1, with two system events
// in its log. Stop it with Stop.
func Start(opts Options) (*Server, error) {
	if opts.Version == "" {
		opts.Version = "24.10.0"
	}
	s := &Server{
		opts:    opts,
		streams: map[string][]int{},
		end:     firstPosition,
		changed: make(chan struct{}),
		drop:    make(chan struct{}),
	}
	s.WriteRaw("$settings", "$settings", []byte(`{"$userStreamAcl":{}}`))
	s.WriteRaw("$stats-127.0.0.1:2113", "$statsCollected", []byte(`{"proc-cpu":1}`))
	if err := s.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) listen(addr string) error {
	var lis net.Listener
	var err error
	// After Stop the port may take a moment to be free again.
	for try := 0; try < 50; try++ {
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("esdbtest: listen on %s: %w", addr, err)
	}
	srv := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
		// The client pings every 10s, even without calls in flight.
		MinTime:             time.Second,
		PermitWithoutStream: true,
	}))
	streams.RegisterStreamsServer(srv, &streamsService{s: s})
	serverfeatures.RegisterServerFeaturesServer(srv, &featuresService{s: s})
	gossip.RegisterGossipServer(srv, &gossipService{s: s})
	s.mu.Lock()
	s.srv, s.lis, s.addr = srv, lis, lis.Addr().String()
	s.mu.Unlock()
	go srv.Serve(lis) //nolint:errcheck // ends with Stop
	return nil
}

// Addr is the host:port the double listens on.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is an insecure connection string to the double.
func (s *Server) URL() string { return "esdb://" + s.Addr() + "?tls=false" }

// Stop stops serving at once: calls in flight fail, as when a server
// process dies. The log is kept; Restart serves it again.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Restart serves the log again on the same address after Stop.
func (s *Server) Restart() error {
	s.mu.Lock()
	running, addr := s.srv != nil, s.addr
	s.mu.Unlock()
	if running {
		return errors.New("esdbtest: Restart while running")
	}
	return s.listen(addr)
}

// DropSubscriptions ends every subscription in flight with Unavailable, as
// a server restart or a broken connection does.
func (s *Server) DropSubscriptions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.drop)
	s.drop = make(chan struct{})
}

// LoseAcks makes the next n appends land but answer Unavailable, as when the
// acknowledgement is lost on the way back.
func (s *Server) LoseAcks(n int32) { s.loseAcks.Store(n) }

// Appends counts the append requests that wrote events.
func (s *Server) Appends() int64 { return s.appends.Load() }

// WriteRaw appends one event to any stream (a system stream, another
// program's stream) without expectation or commit metadata, and returns its
// position.
func (s *Server) WriteRaw(stream, typ string, data []byte) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.end
	s.writeLocked(stream, []record{{id: uuid.New(), typ: typ, contentType: "application/json", data: data}})
	close(s.changed)
	s.changed = make(chan struct{})
	return p
}

// writeLocked appends recs to stream as one commit and returns the commit
// position and the last prepare position (the same).
//
// Each record gets its own prepare position (its offset in the log); the
// commit position of every event of the commit is the prepare position of
// its last one, so that a commit position is never below a prepare position
// (EventStoreDB's clients refuse such a position) and marks where the
// commit ends.
func (s *Server) writeLocked(stream string, recs []record) (commit, lastPrepare uint64) {
	next := uint64(len(s.streams[stream]))
	now := time.Now().UnixNano() / 100
	first := len(s.log)
	for _, r := range recs {
		r.stream = stream
		r.revision = next
		next++
		r.prepare = s.end
		r.created = now
		commit = r.prepare
		// A record's size on disk, roughly as EventStoreDB counts it.
		s.end += uint64(96 + len(stream) + len(r.typ) + len(r.data) + len(r.meta))
		s.streams[stream] = append(s.streams[stream], len(s.log))
		s.log = append(s.log, r)
	}
	for i := first; i < len(s.log); i++ {
		s.log[i].commit = commit
	}
	return commit, commit
}

// notify wakes the live subscriptions after a write. Append calls it once
// its answer is sent, so that a writer usually learns of its commit before
// subscribers do, as with a real server over a network.
func (s *Server) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// ---- server features and gossip ----

type featuresService struct {
	serverfeatures.UnimplementedServerFeaturesServer
	s *Server
}

func (f *featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	const svc = "event_store.client.streams.streams"
	return &serverfeatures.SupportedMethods{
		EventStoreServerVersion: f.s.opts.Version,
		Methods: []*serverfeatures.SupportedMethod{
			{ServiceName: svc, MethodName: "read"},
			{ServiceName: svc, MethodName: "append"},
		},
	}, nil
}

type gossipService struct {
	gossip.UnimplementedGossipServer
	s *Server
}

func (g *gossipService) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	host, port, err := net.SplitHostPort(g.s.Addr())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	p, _ := strconv.Atoi(port)
	return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{{
		InstanceId:   &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		TimeStamp:    time.Now().UnixNano() / 100,
		State:        gossip.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossip.EndPoint{Address: host, Port: uint32(p)},
	}}}, nil
}

// ---- streams ----

type streamsService struct {
	streams.UnimplementedStreamsServer
	s *Server
}

func parseUUID(u *shared.UUID) (uuid.UUID, error) {
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		var b [16]byte
		most, least := uint64(v.Structured.MostSignificantBits), uint64(v.Structured.LeastSignificantBits)
		for i := range 8 {
			b[i] = byte(most >> (56 - 8*i))
			b[8+i] = byte(least >> (56 - 8*i))
		}
		return uuid.UUID(b), nil
	case *shared.UUID_String_:
		return uuid.Parse(v.String_)
	}
	return uuid.Nil, errors.New("no id")
}

func structured(id uuid.UUID) *shared.UUID {
	var most, least uint64
	for i := range 8 {
		most = most<<8 | uint64(id[i])
		least = least<<8 | uint64(id[8+i])
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits: int64(most), LeastSignificantBits: int64(least)}}}
}

func (x *streamsService) Append(srv streams.Streams_AppendServer) error {
	s := x.s
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "the first message of an append must be its options")
	}
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	if stream == "" {
		return status.Error(codes.InvalidArgument, "empty stream name")
	}
	var recs []record
	size := 0
	for {
		m, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := m.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.InvalidArgument, "expected a proposed message")
		}
		typ, ok := pm.GetMetadata()["type"]
		if !ok {
			return status.Error(codes.InvalidArgument, "Required Metadata Property 'type' is missing")
		}
		ct, ok := pm.GetMetadata()["content-type"]
		if !ok {
			return status.Error(codes.InvalidArgument, "Required Metadata Property 'content-type' is missing")
		}
		id, err := parseUUID(pm.GetId())
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "event id: %v", err)
		}
		size += len(pm.GetData()) + len(pm.GetCustomMetadata()) + len(typ)
		if size > MaxAppendSize {
			return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", MaxAppendSize)
		}
		recs = append(recs, record{id: id, typ: typ, contentType: ct, data: pm.GetData(), meta: pm.GetCustomMetadata()})
	}

	s.mu.Lock()
	idx := s.streams[stream]
	current := int64(len(idx)) - 1 // -1: no stream
	ok := false
	next := int64(-2) // the revision the first event must get; -2: any
	switch v := opts.GetExpectedStreamRevision().(type) {
	case *streams.AppendReq_Options_Any:
		ok = true
	case *streams.AppendReq_Options_NoStream:
		ok, next = current == -1, 0
	case *streams.AppendReq_Options_StreamExists:
		ok = current >= 0
	case *streams.AppendReq_Options_Revision:
		ok, next = current == int64(v.Revision), int64(v.Revision)+1
	default:
		s.mu.Unlock()
		return status.Error(codes.InvalidArgument, "no expected revision")
	}
	if !ok {
		if !s.opts.NoIdempotency && next >= 0 && len(recs) > 0 && s.sameLocked(idx, next, recs) {
			// EventStoreDB's idempotent write: done already, no position.
			s.mu.Unlock()
			return srv.SendAndClose(&streams.AppendResp{Result: &streams.AppendResp_Success_{Success: &streams.AppendResp_Success{
				CurrentRevisionOption: &streams.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(next) + uint64(len(recs)) - 1},
				PositionOption:        &streams.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
			}}})
		}
		s.mu.Unlock()
		wev := &streams.AppendResp_WrongExpectedVersion{}
		if current < 0 {
			wev.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		} else {
			wev.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(current)}
		}
		switch v := opts.GetExpectedStreamRevision().(type) {
		case *streams.AppendReq_Options_NoStream:
			wev.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
		case *streams.AppendReq_Options_StreamExists:
			wev.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		case *streams.AppendReq_Options_Revision:
			wev.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: v.Revision}
		}
		return srv.SendAndClose(&streams.AppendResp{Result: &streams.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wev}})
	}
	if len(recs) == 0 {
		// EventStoreDB accepts an empty append as a no-op.
		s.mu.Unlock()
		success := &streams.AppendResp_Success{PositionOption: &streams.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}}
		if current < 0 {
			success.CurrentRevisionOption = &streams.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
		} else {
			success.CurrentRevisionOption = &streams.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(current)}
		}
		return srv.SendAndClose(&streams.AppendResp{Result: &streams.AppendResp_Success_{Success: success}})
	}
	commit, prepare := s.writeLocked(stream, recs)
	last := uint64(len(s.streams[stream]) - 1)
	s.mu.Unlock()
	s.appends.Add(1)
	defer s.notify()

	if n := s.loseAcks.Load(); n > 0 && s.loseAcks.CompareAndSwap(n, n-1) {
		return status.Error(codes.Unavailable, "esdbtest: acknowledgement lost on purpose")
	}
	return srv.SendAndClose(&streams.AppendResp{Result: &streams.AppendResp_Success_{Success: &streams.AppendResp_Success{
		CurrentRevisionOption: &streams.AppendResp_Success_CurrentRevision{CurrentRevision: last},
		PositionOption: &streams.AppendResp_Success_Position{Position: &streams.AppendResp_Position{
			CommitPosition: commit, PreparePosition: prepare}},
	}}})
}

// sameLocked reports whether the stream already holds recs' ids from
// revision next on: a re-sent append.
func (s *Server) sameLocked(idx []int, next int64, recs []record) bool {
	if next+int64(len(recs)) > int64(len(idx)) {
		return false
	}
	for i, r := range recs {
		if s.log[idx[next+int64(i)]].id != r.id {
			return false
		}
	}
	return true
}
