package main

import (
	"errors"
	"io"
)

func runBenchTrace(args []string, stdout, stderr io.Writer) error {
	return errors.New("not built yet")
}
