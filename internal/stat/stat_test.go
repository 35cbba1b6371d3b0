package stat

import "testing"

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), c.in...)
		if got := Median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Fatalf("median reordered its argument: %v", c.in)
			}
		}
	}
}

func TestRatios(t *testing.T) {
	if got := Ratios([]float64{1.5, 0.5, 1}); got != "**1.00** (0.50–1.50, 3)" {
		t.Errorf("Ratios: %q", got)
	}
	if got := Ratios(nil); got != "–" {
		t.Errorf("Ratios(nil): %q", got)
	}
}
