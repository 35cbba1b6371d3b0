package server_test

import (
	"os"
	"testing"

	"github.com/ferryftp/ferry/server"
)

// TestCommandsDoc fails when docs/COMMANDS.md is not what the command table
// generates; go generate ./server (or -update) rewrites it.
func TestCommandsDoc(t *testing.T) {
	const file = "../docs/COMMANDS.md"
	want := server.CommandsMarkdown()
	if *update {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(file)
	if err != nil || string(got) != want {
		t.Fatalf("%s is stale: run go generate ./server", file)
	}
}
