package converge

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/sqlite"
)

// dbFile is the replica's SQLite database inside its folder.
const dbFile = "replica.db"

// openDefaultStore opens the embedded store of a replica folder.
func openDefaultStore(ctx context.Context, dir string) (store.Store, error) {
	st, err := sqlite.Open(ctx, filepath.Join(dir, dbFile))
	if err != nil {
		return nil, fmt.Errorf("converge: opening %s: %w", dir, err)
	}
	return st, nil
}
