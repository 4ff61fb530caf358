//go:build !unix

package load

func cpuSeconds() float64 { return 0 }
