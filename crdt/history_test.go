package crdt_test

import (
	"testing"

	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/crdt/historytest"
)

func TestSliceHistoryContract(t *testing.T) {
	historytest.Run(t, func() crdt.History { return crdt.NewSliceHistory() })
}
