package readmodel

// SetChunkSize sets how many commits one decoding job holds, for a test;
// the returned func restores it.
func SetChunkSize(n int) (restore func()) {
	old := chunkSize
	chunkSize = n
	return func() { chunkSize = old }
}
