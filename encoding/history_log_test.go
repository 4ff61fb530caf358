package encoding

import (
	"testing"

	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/crdt/historytest"
)

func TestHistoryContract(t *testing.T) {
	historytest.Run(t, func() crdt.History { return NewHistory() })
}
