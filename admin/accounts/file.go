// Package accounts holds the administrators of the admin API and console:
// their accounts (argon2id passwords, like FTP users' but in a file of
// their own), their API tokens (shown once, stored as SHA-256), the
// console's cookie sessions with their CSRF tokens, and the middleware
// that lets nothing through without one of them.
package accounts

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ferryftp/ferry/auth/password"
	"github.com/ferryftp/ferry/internal/atomicfile"
)

// Admin is an administrator's account.
type Admin struct {
	Name     string `toml:"name"`
	Password string `toml:"password"` // argon2id hash
}

// Token is an API token: its ID is public (the token's prefix), its
// secret known only as a SHA-256 hash.
type Token struct {
	ID      string    `toml:"id"`
	Admin   string    `toml:"admin"`
	Hash    string    `toml:"hash"`
	Created time.Time `toml:"created"`
}

// File is the content of the admins file.
type File struct {
	Admin []Admin `toml:"admin"`
	Token []Token `toml:"token"`
}

var validName = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// ValidName says whether name may name an administrator.
func ValidName(name string) bool { return validName.MatchString(name) }

// Load reads the admins file; a missing file holds no one.
func Load(path string) (*File, error) {
	var f File
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &f, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := toml.Decode(string(b), &f); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	for _, a := range f.Admin {
		if !ValidName(a.Name) || password.Check(a.Password) != nil {
			return nil, fmt.Errorf("%s: admin %q: a name and an argon2id password hash are needed", path, a.Name)
		}
	}
	return &f, nil
}

// Save writes f to path atomically, readable by its owner only.
func (f *File) Save(path string) error {
	var buf bytes.Buffer
	buf.WriteString("# Ferry administrators. Edit with `ferry admin add|passwd|del|list|token`.\n\n")
	if err := toml.NewEncoder(&buf).Encode(f); err != nil {
		return err
	}
	return atomicfile.WritePrivate(path, buf.Bytes())
}

// Find returns the index of the admin named name, or -1.
func (f *File) Find(name string) int {
	return slices.IndexFunc(f.Admin, func(a Admin) bool { return a.Name == name })
}

// SetPassword adds the admin name, or changes their password.
func (f *File) SetPassword(name, pw string) error {
	if !ValidName(name) {
		return errors.New("a NAME of 1-64 letters, digits, . _ @ - is needed")
	}
	if pw == "" {
		return errors.New("the password is empty")
	}
	h, err := password.Hash(pw)
	if err != nil {
		return err
	}
	if i := f.Find(name); i >= 0 {
		f.Admin[i].Password = h
		return nil
	}
	f.Admin = append(f.Admin, Admin{Name: name, Password: h})
	return nil
}

// Delete removes the admin name and their tokens.
func (f *File) Delete(name string) bool {
	i := f.Find(name)
	if i < 0 {
		return false
	}
	f.Admin = slices.Delete(f.Admin, i, i+1)
	f.Token = slices.DeleteFunc(f.Token, func(t Token) bool { return t.Admin == name })
	return true
}

// tokenPrefix begins every token, so that a leaked one is recognised
// (secret scanners) and told from a password.
const tokenPrefix = "ferry_"

// NewToken makes a token for admin: it returns the token, to be shown
// once; f keeps only its hash.
func (f *File) NewToken(admin string) (string, error) {
	if f.Find(admin) < 0 {
		return "", fmt.Errorf("no admin %q", admin)
	}
	id, secret := randomHex(6), randomHex(24)
	f.Token = append(f.Token, Token{ID: id, Admin: admin, Hash: hashSecret(secret), Created: time.Now().UTC().Truncate(time.Second)})
	return tokenPrefix + id + "_" + secret, nil
}

// Revoke removes the token with id.
func (f *File) Revoke(id string) bool {
	n := len(f.Token)
	f.Token = slices.DeleteFunc(f.Token, func(t Token) bool { return t.ID == id })
	return len(f.Token) < n
}

// splitToken parses a token into its id and secret.
func splitToken(tok string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, "_")
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
