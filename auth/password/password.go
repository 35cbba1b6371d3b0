// Package password hashes and verifies passwords: argon2id in the PHC string
// format ($argon2id$v=19$m=…,t=…,p=…$salt$hash) for new hashes, and bcrypt
// ($2a$, $2b$, $2y$) for hashes made elsewhere.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters for new hashes: OWASP's recommended minimum
// (19 MiB, 2 passes, 1 lane) — about 20–40 ms on a server core.
const (
	Memory  = 19 * 1024 // KiB
	Time    = 2
	Threads = 1
	keyLen  = 32
	saltLen = 16
)

var b64 = base64.RawStdEncoding

// ErrMismatch is returned by Verify for a wrong password.
var ErrMismatch = errors.New("password: mismatch")

// ErrFormat is returned for a hash string Ferry cannot read.
var ErrFormat = errors.New("password: unknown hash format")

// Hash returns an argon2id PHC string for pw. It waits its turn among
// MaxConcurrent hash computations.
func Hash(pw string) (string, error) {
	acquire(context.Background())
	defer done()
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, Time, Memory, Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, Memory, Time, Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Decoy is a hash, made on first use, to verify when the name given is
// unknown, so that the time a login takes does not tell names apart. It is
// not made at package init: an argon2id hash costs every start of the
// binary ~100 ms and 19 MiB.
var Decoy = sync.OnceValue(func() string {
	h, _ := Hash("ferry-no-such-name")
	return h
})

// Check reports whether hash is in a format Verify understands.
func Check(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		_, _, _, _, _, err := parseArgon2(hash)
		return err
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		_, err := bcrypt.Cost([]byte(hash))
		return err
	}
	return ErrFormat
}

// Verify checks pw against hash in constant time. It returns nil on a match,
// ErrMismatch on a wrong password, another error for a bad hash.
func Verify(hash, pw string) error { return VerifyContext(context.Background(), hash, pw) }

// VerifyContext is Verify as one of at most MaxConcurrent hash
// computations: it waits for a turn until ctx ends, and then returns
// ctx's error.
func VerifyContext(ctx context.Context, hash, pw string) error {
	if err := acquire(ctx); err != nil {
		return err
	}
	defer done()
	return verify(hash, pw)
}

func verify(hash, pw string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		m, t, p, salt, key, err := parseArgon2(hash)
		if err != nil {
			return err
		}
		got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(key)))
		if subtle.ConstantTimeCompare(got, key) != 1 {
			return ErrMismatch
		}
		return nil
	case strings.HasPrefix(hash, "$2"):
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return ErrMismatch
		}
		return err
	}
	return ErrFormat
}

func parseArgon2(hash string) (m, t uint32, p uint8, salt, key []byte, err error) {
	f := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(f) != 6 || f[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return 0, 0, 0, nil, nil, ErrFormat
	}
	var pp uint32
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &m, &t, &pp); err != nil || m == 0 || t == 0 || pp == 0 || pp > 255 || m > 4<<20 {
		return 0, 0, 0, nil, nil, ErrFormat
	}
	salt, err1 := b64.DecodeString(f[4])
	key, err2 := b64.DecodeString(f[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return 0, 0, 0, nil, nil, ErrFormat
	}
	return m, t, uint8(pp), salt, key, nil
}
