//go:build unix

package main

import "syscall"

// descriptorLimit returns the soft RLIMIT_NOFILE (which the Go runtime has
// raised to the hard limit at startup, syscall/rlimit.go), 0 when unknown.
func descriptorLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == ^uint64(0) {
		return 0
	}
	return uint64(r.Cur)
}
