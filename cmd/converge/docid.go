package main

import (
	"net/url"
	"path/filepath"
	"strings"
)

// docIDFromFile derives a document ID from an export file's name: the base
// name without its extension, path-unescaped (so "notes%2Ftoday.converge"
// imports as "notes/today").
func docIDFromFile(path string) string {
	base := filepath.Base(path)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	if id, err := url.PathUnescape(base); err == nil {
		return id
	}
	return base
}
