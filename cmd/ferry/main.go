// Command ferry is Ferry's FTP server, its administration tool and an FTP
// client.
//
//	ferry serve [flags]              run the server (embedded default: no flags needed)
//	ferry user add|set|passwd|del|list   edit the users file
//	ferry ls|get|put|cat|rm|mkdir|rmdir|mv|mirror|cp|hash URL…   the client
package main

import (
	"fmt"
	"os"
)

var usage = `Ferry — an FTP server and client.

Usage:
  ferry serve [flags]                 run the server (see ferry serve -h)
  ferry user add NAME --home DIR      add a user (password from a prompt or FERRY_PASSWORD)
  ferry user set NAME --expires DAY   change a user (--home, --storage, --permission, --allow-from, --disabled …)
  ferry user passwd NAME              change a user's password
  ferry user del NAME                 delete a user
  ferry user list                     list the users
  ferry admin add|passwd|del NAME     manage the admin API's and console's administrators
  ferry admin list                    list the administrators and their tokens
  ferry admin token create NAME       make an API token for NAME (shown once)
  ferry admin token revoke ID         revoke an API token
` + clientUsage

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if isClientCommand(os.Args[1]) {
		os.Exit(runClient(os.Args[1], os.Args[2:], os.Stdout, os.Stderr))
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "user":
		err = userCmd(os.Args[2:])
	case "admin":
		err = adminCmd(os.Args[2:], os.Stdout)
	case "help", "-h", "--help":
		if len(os.Args) > 2 {
			if cmd := findClientCommand(os.Args[2]); cmd != nil {
				commandHelp(os.Stdout, cmd)
				return
			}
		}
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "ferry: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferry: %v\n", err)
		os.Exit(1)
	}
}
