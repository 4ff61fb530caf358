package sqlite

// This file exists only for the driver comparison benchmarks: it runs the
// very same Store on github.com/ncruces/go-sqlite3 (SQLite compiled to Wasm
// and translated to Go, no cgo). Production code links modernc only.

import (
	"errors"

	ncruces "github.com/ncruces/go-sqlite3"
	_ "github.com/ncruces/go-sqlite3/driver" // registers "sqlite3"
)

var ncrucesDriver = driver{
	name: "sqlite3",
	code: func(err error) int {
		var e *ncruces.Error
		if errors.As(err, &e) {
			return int(e.Code())
		}
		return 0
	},
	dsn: dsnFor,
}
