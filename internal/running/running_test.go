package running

import "testing"

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
