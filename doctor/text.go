package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person: a line per check with its
// evidence, what to change under warnings and problems, the clients'
// flags, and a summary line; color adds terminal colours.
func (r *Report) WriteText(w io.Writer, color bool) {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	marks := map[Verdict]string{OK: paint("32", "ok     "), Warning: paint("33", "warning"), Problem: paint("31;1", "problem"), Skipped: paint("2", "skipped")}
	fmt.Fprintf(w, "ferry doctor %s\n\n", r.Target)
	for _, c := range r.Checks {
		fmt.Fprintf(w, "%s  %-36s %s\n", marks[c.Verdict], c.Title, c.Evidence)
		if c.Fix != "" && c.Verdict != OK {
			fmt.Fprintf(w, "         %-36s → %s\n", "", c.Fix)
		}
	}
	if len(r.Flags) > 0 {
		fmt.Fprintf(w, "\nWhat works with each client:\n")
		names := make([]string, 0, len(r.Flags))
		for n := range r.Flags {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintf(w, "  %-7s %s\n", n, r.Flags[n])
		}
	}
	summary := fmt.Sprintf("%d ok, %d warnings, %d problems, %d skipped in %.1fs", r.count(OK), r.count(Warning), r.Problems(), r.count(Skipped), r.Duration)
	switch {
	case r.Problems() > 0:
		summary = paint("31;1", summary)
	case r.count(Warning) > 0:
		summary = paint("33", summary)
	default:
		summary = paint("32", summary)
	}
	fmt.Fprintf(w, "\n%s\n", summary)
}
