//go:build linux || darwin || freebsd

package switching

import "syscall"

// fsSpace reports the bytes available to an unprivileged user and the
// total size of the file system holding dir.
func fsSpace(dir string) (free, size uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	bs := uint64(st.Bsize)
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, true
}
