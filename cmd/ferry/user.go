package main

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/ferryftp/ferry/auth/password"
	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/storage/backend"
)

// parseWithName parses flags placed before or after one positional name.
func parseWithName(fl *flag.FlagSet, args []string) (string, error) {
	if err := fl.Parse(args); err != nil {
		return "", err
	}
	if fl.NArg() == 0 {
		return "", nil
	}
	name := fl.Arg(0)
	if err := fl.Parse(fl.Args()[1:]); err != nil {
		return "", err
	}
	if fl.NArg() > 0 {
		return "", fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	return name, nil
}

// userArgs are the arguments of `ferry user SUB [NAME]`.
type userArgs struct {
	name, file, home string
	storage          string
	readOnly         bool
	fxp              listFlag
}

func userCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("user: want add, passwd, del or list")
	}
	sub := args[0]
	var a userArgs
	fl := flag.NewFlagSet("ferry user "+sub, flag.ContinueOnError)
	fl.StringVar(&a.file, "users", filepath.Join("ferry-data", "users.toml"), "users `file`")
	fl.StringVar(&a.home, "home", "", "home `directory` (relative paths are relative to the users file)")
	fl.StringVar(&a.storage, "storage", "", "storage `URL` of the user's files instead of --home (s3://bucket/prefix?endpoint=…)")
	fl.BoolVar(&a.readOnly, "read-only", false, "the user may only download and list")
	fl.Var(&a.fxp, "fxp", "`network` the user may use for third-party (FXP) transfers (repeatable)")
	var err error
	if a.name, err = parseWithName(fl, args[1:]); err != nil {
		return err
	}
	list, err := users.Load(a.file)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		userList(list)
		return nil
	case "add":
		return userAdd(a, list)
	case "passwd":
		return userPasswd(a, list)
	case "del":
		return userDel(a, list)
	}
	return fmt.Errorf("user: unknown subcommand %q", sub)
}

func userList(list []users.User) {
	for _, u := range list {
		perm := u.Permission
		if perm == "" {
			perm = users.ReadOnly
		}
		fmt.Printf("%s\t%s\t%s\n", u.Name, perm, cmp.Or(u.Storage, u.Home))
	}
}

func findUser(list []users.User, name string) int {
	for i, u := range list {
		if u.Name == name {
			return i
		}
	}
	return -1
}

func userAdd(a userArgs, list []users.User) error {
	if !users.ValidName(a.name) {
		return errors.New("user add: a NAME of 1-64 letters, digits, . _ @ - is needed")
	}
	if a.home == "" && a.storage == "" {
		return errors.New("user add: --home DIR or --storage URL is needed")
	}
	if a.storage != "" {
		if err := backend.Check(a.storage); err != nil {
			return fmt.Errorf("user add: %v", err)
		}
	}
	if findUser(list, a.name) >= 0 {
		return fmt.Errorf("user add: %q exists (use passwd to change the password)", a.name)
	}
	pw, err := readPassword()
	if err != nil {
		return err
	}
	h, err := password.Hash(pw)
	if err != nil {
		return err
	}
	perm := users.ReadWrite
	if a.readOnly {
		perm = users.ReadOnly
	}
	list = append(list, users.User{Name: a.name, Password: h, Home: a.home, Storage: a.storage, Permission: perm, FXP: a.fxp})
	if err := users.Save(a.file, list); err != nil {
		return err
	}
	if a.storage != "" {
		fmt.Printf("added %s\n", a.name)
		return nil
	}
	dir := a.home
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(a.file), dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fmt.Printf("added %s\n", a.name)
	return nil
}

func userPasswd(a userArgs, list []users.User) error {
	return editUser(a, list, "passwd", "password of %s changed\n", func(list []users.User, i int) ([]users.User, error) {
		pw, err := readPassword()
		if err == nil {
			list[i].Password, err = password.Hash(pw)
		}
		return list, err
	})
}

func userDel(a userArgs, list []users.User) error {
	return editUser(a, list, "del", "deleted %s\n", func(list []users.User, i int) ([]users.User, error) {
		return append(list[:i], list[i+1:]...), nil
	})
}

// editUser finds a.name in list, applies edit, saves the users file and
// prints done (with the name).
func editUser(a userArgs, list []users.User, sub, done string, edit func([]users.User, int) ([]users.User, error)) error {
	i := findUser(list, a.name)
	if i < 0 {
		return fmt.Errorf("user %s: no user %q in %s", sub, a.name, a.file)
	}
	list, err := edit(list, i)
	if err != nil {
		return err
	}
	if err := users.Save(a.file, list); err != nil {
		return err
	}
	fmt.Printf(done, a.name)
	return nil
}

// readPassword takes the password from FERRY_PASSWORD, a terminal prompt
// (not echoed, asked twice), or one line of standard input.
func readPassword() (string, error) {
	if pw := os.Getenv("FERRY_PASSWORD"); pw != "" {
		return pw, nil
	}
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprint(os.Stderr, "Password: ")
		a, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(os.Stderr, "Again: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("passwords differ")
		}
		if len(a) == 0 {
			return "", errors.New("empty password")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil {
			return "", errors.New("no password: set FERRY_PASSWORD or type it at the prompt")
		}
		return "", errors.New("empty password")
	}
	return line, nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }
