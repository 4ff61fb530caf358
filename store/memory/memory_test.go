package memory_test

import (
	"testing"

	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
}
