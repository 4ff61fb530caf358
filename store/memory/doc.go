// Package memory is a store.Store that keeps everything in memory, for tests
// and deterministic simulation. Nothing survives the process; "durable"
// means "held by this value until Close".
//
// It copies bytes in and out, so that a caller reusing a buffer, or changing
// what it was given, cannot change what is stored: the same rule a disk
// backend follows by construction, kept here so that tests written against
// memory do not pass by accident.
package memory
