package main

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if smallStoreDir != "" {
		os.RemoveAll(smallStoreDir)
	}
	os.Exit(code)
}
