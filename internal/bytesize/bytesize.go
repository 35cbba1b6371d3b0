// Package bytesize reads and writes byte counts with binary suffixes:
// "16MiB", "1 GiB", "512K", "1048576".
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse reads a byte count: a plain number or one with a suffix KiB,
// MiB, GiB, TiB (or K, M, G, T, KB …; powers of 1024 all).
func Parse(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for i, unit := range []string{"K", "M", "G", "T"} {
		if n, ok := trimUnit(t, unit); ok {
			t, mult = n, int64(1)<<(10*(i+1))
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (say 16MiB or 16777216)", s)
	}
	return n * mult, nil
}

// trimUnit removes unit, unit+"B" or unit+"IB" from the end of t.
func trimUnit(t, unit string) (string, bool) {
	for _, suf := range []string{unit + "IB", unit + "B", unit} {
		if strings.HasSuffix(t, suf) {
			return strings.TrimSpace(strings.TrimSuffix(t, suf)), true
		}
	}
	return t, false
}

// Size is a byte count that reads and writes itself with a suffix, for
// settings (TOML strings like "1MiB", or plain numbers) and flags.
type Size int64

// String is the largest exact binary unit: "1MiB", "1536KiB", "100".
func (s Size) String() string {
	n := int64(s)
	for _, u := range []struct {
		name  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *Size) UnmarshalText(b []byte) error {
	n, err := Parse(string(b))
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// MarshalJSON writes the size as a JSON number of bytes.
func (s Size) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, int64(s), 10), nil }

// UnmarshalJSON reads a number of bytes or a string with a unit ("10MiB").
func (s *Size) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		str, err := strconv.Unquote(string(b))
		if err != nil {
			return err
		}
		return s.UnmarshalText([]byte(str))
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("want a number of bytes or a size such as \"10MiB\", not %s", b)
	}
	*s = Size(n)
	return nil
}
