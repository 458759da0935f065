package readmodel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// SetChunkSize sets how many commits one decoding job holds, for a test;
// the returned func restores it.
func SetChunkSize(n int) (restore func()) {
	old := chunkSize
	chunkSize = n
	return func() { chunkSize = old }
}

// Checksum is the checksum a snapshot file carries (see WriteSnapshot),
// for a test that writes one of an older format.
func Checksum(directory string, stats, board []byte) string { return checksum(directory, stats, board) }

func checksum(directory string, stats, board []byte) string {
	h := sha256.New()
	h.Write([]byte(directory))
	h.Write([]byte{0})
	h.Write(stats)
	h.Write([]byte{0})
	h.Write(board)
	return hex.EncodeToString(h.Sum(nil))
}

// snapshot is the snapshot file's document, for tests that take one apart.
type snapshot struct {
	Format    string          `json:"format"`
	Directory string          `json:"directory"`
	Position  uint64          `json:"position"`
	TakenAt   time.Time       `json:"taken_at"`
	SHA256    string          `json:"sha256"`
	Stats     json.RawMessage `json:"stats"`
	Board     json.RawMessage `json:"board"`
}
