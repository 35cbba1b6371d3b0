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
	want, known := adminArgs[sub]
	if !known {
		return fmt.Errorf("admin: unknown subcommand %q", sub)
	}
	fl := flag.NewFlagSet("ferry admin "+sub, flag.ContinueOnError)
	file := fl.String("admins", filepath.Join("ferry-data", "admins.toml"), "admins `file` (the server's admins setting)")
	arg, err := parseWithName(fl, rest)
	if err != nil {
		return err
	}
	if want != "" && arg == "" {
		return fmt.Errorf("admin %s: want %s", sub, want)
	}
	f, err := accounts.Load(*file)
	if err != nil {
		return err
	}
	if sub == "list" {
		adminList(stdout, f)
		return nil
	}
	done, err := adminEdit(f, sub, arg)
	if err != nil {
		return err
	}
	if err := f.Save(*file); err != nil {
		return err
	}
	fmt.Fprintln(stdout, done)
	return nil
}

// adminArgs are the subcommands of ferry admin and the argument each
// needs.
var adminArgs = map[string]string{"list": "", "add": "NAME", "passwd": "NAME", "del": "NAME",
	"token create": "NAME", "token revoke": "ID"}

// adminEdit makes the change sub asks for on f and says what it did.
func adminEdit(f *accounts.File, sub, arg string) (string, error) {
	switch sub {
	case "add", "passwd":
		if i := f.Find(arg); (i >= 0) == (sub == "add") {
			return "", fmt.Errorf("admin %s: %q %s", sub, arg, map[bool]string{true: "exists", false: "does not exist"}[i >= 0])
		}
		pw, err := readPassword()
		if err != nil {
			return "", err
		}
		if err := f.SetPassword(arg, pw); err != nil {
			return "", fmt.Errorf("admin %s: %v", sub, err)
		}
		return map[string]string{"add": "added admin ", "passwd": "password changed of admin "}[sub] + arg, nil
	case "del":
		if !f.Delete(arg) {
			return "", fmt.Errorf("admin del: no admin %q", arg)
		}
		return "deleted admin " + arg + " and their tokens", nil
	case "token create":
		tok, err := f.NewToken(arg)
		if err != nil {
			return "", fmt.Errorf("admin token create: %v", err)
		}
		return tok + "\n(the token of " + arg + ": shown this once, keep it secret)", nil
	default: // token revoke
		if !f.Revoke(arg) {
			return "", fmt.Errorf("admin token revoke: no token %q", arg)
		}
		return "revoked token " + arg, nil
	}
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
