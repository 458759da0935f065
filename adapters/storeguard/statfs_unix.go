//go:build unix

package storeguard

import "golang.org/x/sys/unix"

// freeBytes is the space a process without privileges may still write on
// the file system of dir.
func freeBytes(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true //nolint:unconvert // the field types differ by system
}
