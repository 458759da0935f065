//go:build !unix

package storeguard

// freeBytes is unknown here: only the server's write errors are watched.
func freeBytes(string) (uint64, bool) { return 0, false }
