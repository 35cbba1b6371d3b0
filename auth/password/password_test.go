package password

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestArgon2id(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if err := Check(h); err != nil {
		t.Fatal(err)
	}
	if err := Verify(h, "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := Verify(h, "correct horse "); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password: %v", err)
	}
	h2, _ := Hash("correct horse")
	if h2 == h {
		t.Fatal("same salt twice")
	}
}

func TestBcrypt(t *testing.T) {
	b, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err := Check(string(b)); err != nil {
		t.Fatal(err)
	}
	if err := Verify(string(b), "pw"); err != nil {
		t.Fatal(err)
	}
	if err := Verify(string(b), "px"); !errors.Is(err, ErrMismatch) {
		t.Fatal(err)
	}
}

func TestBadHashes(t *testing.T) {
	for _, h := range []string{"", "plain", "$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=18$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$2a$nope"} {
		if Check(h) == nil {
			t.Errorf("Check(%q) accepted", h)
		}
		if Verify(h, "x") == nil {
			t.Errorf("Verify(%q) accepted", h)
		}
	}
}

// TestDecoy: the hash verified for unknown names is a real argon2id hash
// with today's parameters, made once: a wrong password against it costs a
// full verification (as against a user's hash), not a quick format error.
func TestDecoy(t *testing.T) {
	h := Decoy()
	want := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", Memory, Time, Threads)
	if !strings.HasPrefix(h, want) {
		t.Fatalf("Decoy() = %q, want a hash starting %q", h, want)
	}
	if err := Verify(h, "anything"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Verify(Decoy(), …) = %v, want ErrMismatch", err)
	}
	if Decoy() != h {
		t.Fatal("Decoy() changed between calls")
	}
}
