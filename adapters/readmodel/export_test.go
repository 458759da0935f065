package readmodel

// SetChunkSize sets how many commits one decoding job holds, for a test;
// the returned func restores it.
func SetChunkSize(n int) (restore func()) {
	old := chunkSize
	chunkSize = n
	return func() { chunkSize = old }
}

// Checksum is the checksum a snapshot file carries, for a test that writes
// one of an older format.
func Checksum(directory string, stats, board []byte) string { return checksum(directory, stats, board) }
