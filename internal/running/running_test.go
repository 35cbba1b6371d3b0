package running

import (
	"errors"
	"testing"

	"github.com/ferryftp/ferry/storage"
)

func TestSet(t *testing.T) {
	var s Set
	if !s.Start("a", true) {
		t.Fatal("a resume with nothing running refused")
	}
	if s.Start("a", true) {
		t.Fatal("a second resume while the first runs allowed")
	}
	if !s.Start("a", false) || !s.Start("b", true) {
		t.Fatal("a new upload, or another file, refused")
	}
	s.End("a")
	if s.Start("a", true) {
		t.Fatal("a resume allowed while one of two uploads still runs")
	}
	s.End("a")
	if !s.Start("a", true) {
		t.Fatal("a resume refused once both ended")
	}
	s.End("a")
	s.End("b")
	if len(s.n) != 0 {
		t.Fatalf("keys left: %v", s.n)
	}
}

// TestCreate: a resume while an upload runs is storage.ErrBusy without
// calling create; a create that fails leaves nothing counted.
func TestCreate(t *testing.T) {
	var s Set
	ok := func() (int, error) { return 1, nil }
	if _, err := Create(&s, "a", false, ok); err != nil {
		t.Fatal(err)
	}
	called := false
	_, err := Create(&s, "a", true, func() (int, error) { called = true; return 1, nil })
	if !errors.Is(err, storage.ErrBusy) || called {
		t.Fatalf("resume while one runs: %v, create called %v", err, called)
	}
	s.End("a")
	cut := errors.New("cut")
	if _, err := Create(&s, "a", true, func() (int, error) { return 0, cut }); err != cut {
		t.Fatalf("failed create: %v", err)
	}
	if len(s.n) != 0 {
		t.Fatalf("a failed create stays counted: %v", s.n)
	}
}
