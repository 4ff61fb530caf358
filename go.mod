module github.com/converge-sync/converge

go 1.26.8
