package transport_test

import (
	"errors"
	"testing"

	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
)

func TestCloseError(t *testing.T) {
	err := error(&transport.CloseError{Code: transport.ClosePolicyViolation, Reason: "token expired"})
	if !errors.Is(err, transport.ErrClosed) {
		t.Error("CloseError does not wrap ErrClosed")
	}
	if got, want := err.Error(), "transport: peer closed the connection (1008 policy violation: token expired)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// The default read limit must let through every frame syncproto's default
// limits allow.
func TestDefaultReadLimit(t *testing.T) {
	if transport.DefaultReadLimit != syncproto.DefaultLimits.MaxFrame {
		t.Errorf("DefaultReadLimit = %d, syncproto.DefaultLimits.MaxFrame = %d", transport.DefaultReadLimit, syncproto.DefaultLimits.MaxFrame)
	}
}
