//go:build !unix

package seq

// cpuTime is not measured on this platform; cpu-ns/edit reads 0.
func cpuTime() int64 { return 0 }
