package server

import (
	"fmt"
	"strings"
)

//go:generate go test -run TestCommandsDoc -update

// CommandsMarkdown renders the command table as docs/COMMANDS.md.
func CommandsMarkdown() string {
	var b strings.Builder
	b.WriteString("# Commands\n\n")
	b.WriteString("Generated from the server's command table (`server/commands.go`) by\n")
	b.WriteString("`go generate ./server`; a test fails when this file is stale.\n\n")
	b.WriteString("Login: the command needs a logged-in user (else 530). During transfer: answered\n")
	b.WriteString("at once while a transfer runs (other commands wait for its end).\n\n")
	b.WriteString("| Command | Syntax | Login | During transfer | FEAT | Spec | Description |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	yes := func(v bool) string {
		if v {
			return "yes"
		}
		return ""
	}
	for _, c := range table {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s | %s |\n", c.Verb, strings.ReplaceAll(c.Syntax, "|", `\|`), yes(c.Login), yes(c.DuringTransfer),
			strings.ReplaceAll(c.Feat, "|", `\|`), c.RFC, c.Help)
	}
	b.WriteString("\nOther FEAT lines: " + strings.Join(extraFeat, ", ") + ".\n")
	return b.String()
}
