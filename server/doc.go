// Package server is converge's sync server: a replica that holds many
// documents and never authors edits. It serves WebSocket sync connections
// (Replica.Serve with the server role), reads documents as JSON over HTTP,
// reports health and Prometheus metrics, keeps the documents in memory
// within a budget, and shuts down gracefully.
//
// The server's data folder is a cache: clients hold the documents, and a
// server that lost its folder is refilled by their next sync.
//
//	srv, err := server.New(server.Config{DataDir: "./converge-data"})
//	if err != nil { … }
//	err = srv.ListenAndServe(ctx) // until ctx ends; then peers are told going_away
//
// See docs/server.md for the routes, metrics and eviction.
package server
