package bytesize

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "16777216": 16 << 20, "16MiB": 16 << 20, "16 MiB": 16 << 20, "5m": 5 << 20, "1G": 1 << 30, "2TiB": 2 << 40, "8kb": 8 << 10} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5GiB", "GiB", "1PiB", "99999999999TiB", "1 G B"} {
		if n, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", in, n)
		}
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[Size]string{0: "0", 100: "100", 1 << 20: "1MiB", 1536 << 10: "1536KiB", 3 << 30: "3GiB"} {
		if got := n.String(); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
		var back Size
		if err := back.UnmarshalText([]byte(want)); err != nil || back != n {
			t.Errorf("%q read back as %d, %v", want, back, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"16MiB", "1", "5 G", "x", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := Parse(s); err == nil && n < 0 {
			t.Fatalf("%q: %d", s, n)
		}
	})
}
