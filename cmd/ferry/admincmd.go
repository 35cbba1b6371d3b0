package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ferryftp/ferry/admin/accounts"
)

// adminCmd is `ferry admin SUB …`: the administrators of the admin API
// and console, in the admins file a running server reads at each request.
func adminCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("admin: want add, passwd, del, list or token")
	}
	sub, rest := args[0], args[1:]
	if sub == "token" {
		if len(rest) == 0 {
			return errors.New("admin token: want create NAME or revoke ID")
		}
		sub, rest = "token "+rest[0], rest[1:]
	}
	fl := flag.NewFlagSet("ferry admin "+sub, flag.ContinueOnError)
	file := fl.String("admins", filepath.Join("ferry-data", "admins.toml"), "admins `file` (the server's admins setting)")
	arg, err := parseWithName(fl, rest)
	if err != nil {
		return err
	}
	f, err := accounts.Load(*file)
	if err != nil {
		return err
	}
	need := func(what string) error {
		if arg == "" {
			return fmt.Errorf("admin %s: want %s", sub, what)
		}
		return nil
	}
	var done string
	switch sub {
	case "list":
		adminList(stdout, f)
		return nil
	case "add", "passwd":
		if err := need("NAME"); err != nil {
			return err
		}
		if i := f.Find(arg); (i >= 0) == (sub == "add") {
			return fmt.Errorf("admin %s: %q %s", sub, arg, map[bool]string{true: "exists", false: "does not exist"}[i >= 0])
		}
		pw, err := readPassword()
		if err != nil {
			return err
		}
		if err := f.SetPassword(arg, pw); err != nil {
			return fmt.Errorf("admin %s: %v", sub, err)
		}
		done = map[string]string{"add": "added admin ", "passwd": "password changed of admin "}[sub] + arg
	case "del":
		if err := need("NAME"); err != nil {
			return err
		}
		if !f.Delete(arg) {
			return fmt.Errorf("admin del: no admin %q", arg)
		}
		done = "deleted admin " + arg + " and their tokens"
	case "token create":
		if err := need("NAME"); err != nil {
			return err
		}
		tok, err := f.NewToken(arg)
		if err != nil {
			return fmt.Errorf("admin token create: %v", err)
		}
		done = tok + "\n(the token of " + arg + ": shown this once, keep it secret)"
	case "token revoke":
		if err := need("ID"); err != nil {
			return err
		}
		if !f.Revoke(arg) {
			return fmt.Errorf("admin token revoke: no token %q", arg)
		}
		done = "revoked token " + arg
	default:
		return fmt.Errorf("admin: unknown subcommand %q", sub)
	}
	if err := f.Save(*file); err != nil {
		return err
	}
	fmt.Fprintln(stdout, done)
	return nil
}

func adminList(w io.Writer, f *accounts.File) {
	for _, a := range f.Admin {
		fmt.Fprintln(w, a.Name)
		for _, t := range f.Token {
			if t.Admin == a.Name {
				fmt.Fprintf(w, "  token %s, created %s\n", t.ID, t.Created.Format("2006-01-02 15:04 UTC"))
			}
		}
	}
}
