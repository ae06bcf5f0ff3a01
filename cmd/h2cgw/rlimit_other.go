//go:build !unix

package main

// descriptorLimit is unknown off unix: the connection cap has no default.
func descriptorLimit() uint64 { return 0 }
