// Package storetest is the contract test suite for store.Store: every
// backend runs it, so that a replica or a server behaves the same whichever
// backend holds its documents.
//
// Run checks each sentence of the interface's contract on a fresh store per
// test, plus a randomised comparison against a plain model of the contract.
// RunPersistent checks, for backends that keep data across processes, that
// closing and reopening the same folder loses and changes nothing.
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
//	}
package storetest
