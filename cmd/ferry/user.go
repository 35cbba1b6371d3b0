package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/auth/password"
	"github.com/ferryftp/ferry/auth/users"
	"github.com/ferryftp/ferry/internal/bytesize"
	"github.com/ferryftp/ferry/limits"
	"github.com/ferryftp/ferry/state/pgstate"
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
	database         string // instead of file: the shared users of a cluster
	repo             userRepo
	storage          string
	readOnly         bool
	permission       string
	fxp, allowFrom   listFlag
	dirs             listFlag
	expires          string
	disabled         bool
	rateUp, rateDown bytesize.Size
	quotaBytes       bytesize.Size
	quotaFiles       int64
	set              map[string]bool // the flags given
}

func userCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("user: want add, set, passwd, del, list or import")
	}
	sub := args[0]
	var a userArgs
	fl := flag.NewFlagSet("ferry user "+sub, flag.ContinueOnError)
	fl.StringVar(&a.file, "users", filepath.Join("ferry-data", "users.toml"), "users `file`")
	fl.StringVar(&a.database, "database", "", "PostgreSQL `URL` of a cluster's users, instead of --users (the password in PGPASSWORD or a PGPASSFILE)")
	fl.StringVar(&a.home, "home", "", "home `directory` (relative paths are relative to the users file)")
	fl.StringVar(&a.storage, "storage", "", "storage `URL` of the user's files instead of --home (s3://bucket/prefix?endpoint=…)")
	fl.BoolVar(&a.readOnly, "read-only", false, "the user may only download and list (add)")
	fl.StringVar(&a.permission, "permission", "", "read-only or read-write (set)")
	fl.Var(&a.fxp, "fxp", "`network` the user may use for third-party (FXP) transfers (repeatable)")
	fl.Var(&a.allowFrom, "allow-from", "`network` the user may log in from (repeatable; \"any\" clears the list)")
	fl.Var(&a.dirs, "dir", "`PATH=PERMS` permissions in a directory and below (/incoming=upload,list; repeatable; \"none\" clears)")
	fl.StringVar(&a.expires, "expires", "", "last `day` the user may log in (2027-03-31; \"never\" clears it)")
	fl.BoolVar(&a.disabled, "disabled", false, "refuse every login of the user (--disabled=false enables)")
	fl.TextVar(&a.quotaBytes, "quota-bytes", bytesize.Size(0), "`bytes` the user may store (10GiB; 0: no quota)")
	fl.Int64Var(&a.quotaFiles, "quota-files", 0, "`files` the user may store (0: no quota)")
	fl.TextVar(&a.rateUp, "max-rate-up", bytesize.Size(0), "`bytes` a second of all the user's uploads together (1MiB; 0: no limit)")
	fl.TextVar(&a.rateDown, "max-rate-down", bytesize.Size(0), "`bytes` a second of all the user's downloads together (0: no limit)")
	var err error
	if a.name, err = parseWithName(fl, args[1:]); err != nil {
		return err
	}
	a.set = map[string]bool{}
	fl.Visit(func(f *flag.Flag) { a.set[f.Name] = true })
	a.repo = users.File(a.file)
	if a.database != "" {
		db, err := pgstate.Open(context.Background(), a.database, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		defer db.Close()
		a.repo = dbRepo{db}
	}
	if sub == "import" {
		return userImport(a)
	}
	switch sub {
	case "list":
		list, err := a.repo.Users(context.Background())
		if err != nil {
			return err
		}
		usage := map[string]limits.State{}
		if a.database == "" {
			usage = users.LoadUsage(users.UsagePath(a.file))
		}
		userList(list, usage)
		return nil
	case "add":
		return userAdd(a)
	case "set":
		return userSet(a)
	case "passwd":
		return userPasswd(a)
	case "del":
		return userDel(a)
	}
	return fmt.Errorf("user: unknown subcommand %q", sub)
}

// apply sets on u the account fields whose flags were given, through
// the users.Change the admin API makes too.
func (a userArgs) apply(u *users.User) error {
	c, err := a.change()
	if err != nil {
		return err
	}
	return c.Apply(u)
}

// change is the users.Change of the flags given.
func (a userArgs) change() (users.Change, error) {
	var c users.Change
	if a.set["home"] {
		c.Home = &a.home
	}
	if a.set["storage"] {
		c.Storage = &a.storage
	}
	if a.set["permission"] {
		if a.permission != users.ReadOnly && a.permission != users.ReadWrite {
			return c, fmt.Errorf("--permission: want %s or %s", users.ReadOnly, users.ReadWrite)
		}
		c.Permission = &a.permission
	}
	if a.set["fxp"] {
		c.FXP = (*[]string)(&a.fxp)
	}
	if a.set["allow-from"] {
		nets := []string{}
		for _, n := range a.allowFrom {
			if n != "any" {
				nets = append(nets, n)
			}
		}
		c.AllowFrom = &nets
	}
	if a.set["expires"] {
		exp := a.expires
		if exp == "never" {
			exp = ""
		}
		c.Expires = &exp
	}
	if a.set["disabled"] {
		c.Disabled = &a.disabled
	}
	if a.set["dir"] {
		dirs, err := parseDirs(a.dirs)
		if err != nil {
			return c, err
		}
		c.Dirs = &dirs
	}
	if a.set["quota-bytes"] {
		c.QuotaBytes = &a.quotaBytes
	}
	if a.set["quota-files"] {
		if a.quotaFiles < 0 {
			return c, errors.New("--quota-files: want 0 or more")
		}
		c.QuotaFiles = &a.quotaFiles
	}
	if a.set["max-rate-up"] {
		c.MaxRateUp = &a.rateUp
	}
	if a.set["max-rate-down"] {
		c.MaxRateDown = &a.rateDown
	}
	return c, nil
}

// parseDirs reads --dir PATH=PERMS flags ("none" alone: no rules).
func parseDirs(flags []string) ([]users.DirRule, error) {
	dirs := []users.DirRule{}
	for _, d := range flags {
		if d == "none" {
			continue
		}
		p, perms, ok := strings.Cut(d, "=")
		if !ok || p == "" {
			return nil, fmt.Errorf("--dir %q: want PATH=PERMS", d)
		}
		if _, err := auth.ParsePerm(perms); err != nil {
			return nil, fmt.Errorf("--dir %s: %v", p, err)
		}
		dirs = append(dirs, users.DirRule{Path: p, Perms: perms})
	}
	return dirs, nil
}

func userList(list []users.User, usage map[string]limits.State) {
	for _, u := range list {
		perm := u.Permission
		if perm == "" {
			perm = users.ReadOnly
		}
		var extra []string
		if u.QuotaBytes > 0 || u.QuotaFiles > 0 {
			used, known := usage[u.Name]
			q := fmt.Sprintf("quota %s of %s, %d of %s files", bytesize.Size(used.Bytes), limit(u.QuotaBytes), used.Files, limitN(u.QuotaFiles))
			if !known {
				q += " (usage counted at the first login)"
			}
			if n := len(used.Partials); n > 0 {
				var kept int64
				for _, p := range used.Partials {
					kept += p.Bytes
				}
				q += fmt.Sprintf(" (%s of it in %d interrupted upload%s kept for a resume)", bytesize.Size(kept), n, plural(n))
			}
			extra = append(extra, q)
		}
		if u.MaxRateUp > 0 || u.MaxRateDown > 0 {
			extra = append(extra, fmt.Sprintf("rate up %s/s down %s/s", rate(u.MaxRateUp), rate(u.MaxRateDown)))
		}
		if len(u.AllowFrom) > 0 {
			extra = append(extra, "from "+strings.Join(u.AllowFrom, ","))
		}
		if u.Expires != "" {
			extra = append(extra, "expires "+u.Expires)
		}
		if u.Disabled {
			extra = append(extra, "disabled")
		}
		line := u.Name + "\t" + perm + "\t" + cmp.Or(u.Storage, u.Home)
		if len(extra) > 0 {
			line += "\t" + strings.Join(extra, "; ")
		}
		fmt.Println(line)
	}
}

// limit shows a byte quota, "no limit" for none.
func limit(s bytesize.Size) string {
	if s <= 0 {
		return "no limit"
	}
	return s.String()
}

func limitN(n int64) string {
	if n <= 0 {
		return "no limit"
	}
	return fmt.Sprint(n)
}

// rate shows a limit, "-" for none.
func rate(s bytesize.Size) string {
	if s <= 0 {
		return "-"
	}
	return s.String()
}

func findUser(list []users.User, name string) int {
	for i, u := range list {
		if u.Name == name {
			return i
		}
	}
	return -1
}

func userAdd(a userArgs) error {
	if !users.ValidName(a.name) {
		return errors.New("user add: a NAME of 1-64 letters, digits, . _ @ - is needed")
	}
	if a.home == "" && a.storage == "" {
		return errors.New("user add: --home DIR or --storage URL is needed")
	}
	u := users.User{Name: a.name, Permission: users.ReadWrite}
	if a.readOnly {
		u.Permission = users.ReadOnly
	}
	c, err := a.change()
	if err != nil {
		return fmt.Errorf("user add: %v", err)
	}
	pw, err := readPassword()
	if err != nil {
		return err
	}
	c.Password = &pw
	if err := c.Apply(&u); err != nil {
		return fmt.Errorf("user add: %v", err)
	}
	err = users.Edit(context.Background(), a.repo, func(list []users.User) ([]users.User, error) {
		if findUser(list, a.name) >= 0 {
			return nil, fmt.Errorf("user add: %q exists (use set to change it, passwd for the password)", a.name)
		}
		return append(list, u), nil
	})
	if err != nil {
		return err
	}
	if u.Storage == "" {
		dir := u.Home
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(filepath.Dir(a.file), dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	fmt.Printf("added %s\n", a.name)
	return nil
}

// userSet changes the given fields of a user; a running server rereads
// the file on the next login.
func userSet(a userArgs) error {
	if len(a.set) == 0 || (len(a.set) == 1 && a.set["users"]) {
		return errors.New("user set: nothing to change (--home, --storage, --permission, --fxp, --allow-from, --expires, --disabled, --max-rate-up, --max-rate-down, --quota-bytes, --quota-files, --dir)")
	}
	if a.set["read-only"] {
		return errors.New("user set: use --permission read-only")
	}
	return editUser(a, "set", "changed %s\n", func(list []users.User, i int) ([]users.User, error) {
		return list, a.apply(&list[i])
	})
}

func userPasswd(a userArgs) error {
	pw, err := readPassword() // before the edit: a prompt holds nothing
	if err != nil {
		return err
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return err
	}
	return editUser(a, "passwd", "password of %s changed\n", func(list []users.User, i int) ([]users.User, error) {
		list[i].Password = hash
		return list, nil
	})
}

func userDel(a userArgs) error {
	return editUser(a, "del", "deleted %s\n", func(list []users.User, i int) ([]users.User, error) {
		return append(list[:i], list[i+1:]...), nil
	})
}

// editUser finds a.name in list, applies edit, saves the users file and
// prints done (with the name).
func editUser(a userArgs, sub, done string, edit func([]users.User, int) ([]users.User, error)) error {
	err := users.Edit(context.Background(), a.repo, func(list []users.User) ([]users.User, error) {
		i := findUser(list, a.name)
		if i < 0 {
			return nil, fmt.Errorf("user %s: no user %q in %s", sub, a.name, a.repo)
		}
		return edit(list, i)
	})
	if err != nil {
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

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// userRepo is where ferry user reads and writes the users: the users
// file, or a cluster's database.
type userRepo interface {
	users.Repo
	String() string
}

// dbRepo is a cluster's database as a userRepo.
type dbRepo struct{ *pgstate.DB }

func (dbRepo) String() string { return "the database" }

// userImport moves the users of a users file into the database: users of
// the file replace those of the same name; others stay.
func userImport(a userArgs) error {
	if a.database == "" || a.name == "" {
		return errors.New("user import: want FILE and --database URL")
	}
	from, err := users.Load(a.name)
	if err != nil {
		return err
	}
	base, _ := filepath.Abs(filepath.Dir(a.name))
	err = users.Edit(context.Background(), a.repo, func(have []users.User) ([]users.User, error) {
		for _, u := range from {
			if u.Storage == "" && !filepath.IsAbs(u.Home) {
				u.Home = filepath.Join(base, u.Home) // as the file meant it
			}
			if i := findUser(have, u.Name); i >= 0 {
				have[i] = u
			} else {
				have = append(have, u)
			}
		}
		return have, nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("imported %d users from %s\n", len(from), a.name)
	return nil
}
