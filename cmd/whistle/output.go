package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/text/width"
)

// output is the -o flag: table (fitted to the terminal), wide (every column,
// nothing cut) or json (the server's answer).
type output struct {
	format string
	json   bool // --json, kept as an alias of -o json where it was a flag
}

var outputFormats = []string{"table", "wide", "json"}

func (o *output) String() string { return o.format }
func (o *output) Type() string   { return "format" }
func (o *output) Set(v string) error {
	for _, f := range outputFormats {
		if v == f {
			o.format = v
			return nil
		}
	}
	return fmt.Errorf("want %s, got %q", strings.Join(outputFormats, ", "), v)
}

func (o *output) isJSON() bool { return o.json || o.format == "json" }
func (o *output) isWide() bool { return o.format == "wide" }

// addOutput gives cmd the -o flag; jsonAlias keeps a --json it had.
func addOutput(cmd *cobra.Command, jsonAlias bool) *output {
	o := &output{format: "table"}
	cmd.Flags().VarP(o, "output", "o", "output format: table (fits the terminal), wide (every column) or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
	if jsonAlias {
		cmd.Flags().BoolVar(&o.json, "json", false, "the same as -o json")
	}
	return o
}

// printJSON writes v indented, with every control character escaped.
func printJSON(out io.Writer, v any) error { return writeJSON(out, v, "  ") }

// writeJSON writes v as JSON (one line when indent is empty) with every
// control character escaped: JSON escapes those below U+0020 itself; DEL,
// the C1 controls (U+0080 to U+009F, among them a one-character CSI) and
// the bidirectional overrides it leaves raw. They can only occur inside
// strings, so escaping them keeps the JSON valid and equal. A byte that is
// not UTF-8 (in a RawMessage passed on) is shown as U+FFFD.
func writeJSON(out io.Writer, v any, indent string) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", indent)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	raw := b.Bytes()
	var esc bytes.Buffer
	for len(raw) > 0 {
		r, n := utf8.DecodeRune(raw)
		switch {
		case r == utf8.RuneError && n <= 1:
			esc.WriteString(`\ufffd`)
		case isControlRune(r):
			fmt.Fprintf(&esc, `\u%04x`, r)
		default:
			esc.Write(raw[:n])
		}
		raw = raw[n:]
	}
	_, err := out.Write(esc.Bytes())
	return err
}

// isControlRune: characters a terminal may act on rather than show: C0 (but
// newline and tab, which JSON escapes and tables never hold), DEL, C1, and
// the bidirectional overrides and isolates that reorder what is shown.
func isControlRune(r rune) bool {
	switch {
	case r < 0x20 && r != '\n' && r != '\t', r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// clean makes s safe to print on a terminal: every control character (see
// isControlRune, and here newline and tab too) and invalid UTF-8 is shown
// as an escape (\x1b, \n, \u202e) instead of being sent as is.
func clean(s string) string {
	safe := true
	for _, r := range s {
		if r == utf8.RuneError || r == '\n' || r == '\t' || isControlRune(r) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && isControlRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControlRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// displayWidth is how many terminal cells s takes: two for East Asian wide
// and full-width characters (Chinese), none for combining marks.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

func runeWidth(r rune) int {
	if unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) {
		return 0
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// elide cuts s to at most w cells, ending in "…" when it was cut.
func elide(s string, w int) string {
	if displayWidth(s) <= w {
		return s
	}
	if w <= 0 {
		return ""
	}
	var b strings.Builder
	used := 0
	for _, r := range s {
		rw := runeWidth(r)
		if used+rw > w-1 {
			break
		}
		b.WriteRune(r)
		used += rw
	}
	return b.String() + "…"
}

// terminalWidth is the width tables fit: $COLUMNS when set, else the
// terminal's when out is one, else 0 (no limit: a pipe gets whole lines).
func terminalWidth(out io.Writer, getenv func(string) string) int {
	if n, err := strconv.Atoi(getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	if f, ok := out.(*os.File); ok {
		return terminalColumns(f)
	}
	return 0
}

// cell is one value of a table: full is shown when it fits, else short
// (an id without the name beside it), else short cut with "…".
type cell struct{ full, short string }

func text(s string) cell { return cell{full: s} }

func (c cell) shortest() string {
	if c.short != "" {
		return c.short
	}
	return c.full
}

// column describes one column of a table and how it gives way when the
// table is wider than the terminal.
type column struct {
	header string
	// shrink: the column may be cut down to min cells (0: never cut).
	shrink bool
	min    int
	// drop: columns are left out, highest first, when even the cut table
	// does not fit (0: never left out).
	drop int
	// wide: only in -o wide.
	wide  bool
	right bool
}

type table struct {
	cols []column
	rows [][]cell
}

func (t *table) add(cells ...cell) { t.rows = append(t.rows, cells) }

// render writes the table with two spaces between columns. With a limit
// (termWidth > 0, not wide) it fits the table in it: first names give way
// to their ids, then columns are left out by their drop rank until the
// columns cut to their minimum fit, then the cut columns give up what they
// must. It returns the headers of the columns it left out.
func (t *table) render(out io.Writer, termWidth int, wide bool) ([]string, error) {
	const gap = 2
	var shown []int
	for i, c := range t.cols {
		if !c.wide || wide {
			shown = append(shown, i)
		}
	}
	full := make([]int, len(t.cols))
	short := make([]int, len(t.cols))
	for _, i := range shown {
		full[i], short[i] = displayWidth(t.cols[i].header), displayWidth(t.cols[i].header)
		for _, row := range t.rows {
			full[i] = max(full[i], displayWidth(clean(row[i].full)))
			short[i] = max(short[i], displayWidth(clean(row[i].shortest())))
		}
	}
	w := append([]int(nil), full...)
	total := func() int {
		n := 0
		for _, i := range shown {
			n += w[i]
		}
		return n + gap*(len(shown)-1)
	}
	var dropped []string
	if termWidth > 0 && !wide && total() > termWidth {
		for _, i := range shown {
			if total() <= termWidth {
				break
			}
			w[i] = short[i]
		}
		floor := func(i int) int {
			if t.cols[i].shrink {
				return min(w[i], max(t.cols[i].min, displayWidth(t.cols[i].header)))
			}
			return w[i]
		}
		for total() > termWidth {
			least := 0
			for _, i := range shown {
				least += floor(i)
			}
			if least+gap*(len(shown)-1) <= termWidth {
				break
			}
			drop := -1
			for k, i := range shown {
				if t.cols[i].drop > 0 && (drop < 0 || t.cols[i].drop > t.cols[shown[drop]].drop) {
					drop = k
				}
			}
			if drop < 0 {
				break
			}
			dropped = append(dropped, t.cols[shown[drop]].header)
			shown = append(shown[:drop:drop], shown[drop+1:]...)
		}
		// Every cut column starts from its minimum; the room left goes to
		// them most important first (lowest drop rank; a column never
		// dropped, the title, last): first up to their ids (a title up to
		// a readable length), then up to their names.
		var cut []int
		for _, i := range shown {
			if t.cols[i].shrink {
				cut = append(cut, i)
			}
		}
		slices.SortStableFunc(cut, func(x, y int) int { return rank(t.cols[x]) - rank(t.cols[y]) })
		for _, i := range cut {
			w[i] = floor(i)
		}
		grow := func(i, target int) { w[i] += max(0, min(target-w[i], termWidth-total())) }
		for _, i := range cut {
			target := short[i]
			if t.cols[i].drop == 0 {
				target = min(full[i], readable)
			}
			grow(i, target)
		}
		for _, i := range cut {
			if t.cols[i].drop == 0 || full[i]-w[i] <= termWidth-total() { // a name whole or not at all
				grow(i, full[i])
			}
		}
	}
	var b strings.Builder
	line := func(cells func(i int) (string, cell)) {
		b.Reset()
		for k, i := range shown {
			s, c := cells(i)
			if s == "" {
				s = clean(c.full)
				if displayWidth(s) > w[i] {
					s = elide(clean(c.shortest()), w[i])
				}
			}
			pad := strings.Repeat(" ", max(0, w[i]-displayWidth(s)))
			switch {
			case t.cols[i].right:
				b.WriteString(pad + s)
			case k == len(shown)-1:
				b.WriteString(s)
			default:
				b.WriteString(s + pad)
			}
			if k < len(shown)-1 {
				b.WriteString(strings.Repeat(" ", gap))
			}
		}
		b.WriteString("\n")
	}
	line(func(i int) (string, cell) { return t.cols[i].header, cell{} })
	if _, err := io.WriteString(out, b.String()); err != nil {
		return nil, err
	}
	for _, row := range t.rows {
		line(func(i int) (string, cell) {
			if row[i].full == "" && row[i].short == "" {
				return "-", cell{}
			}
			return "", row[i]
		})
		if _, err := io.WriteString(out, b.String()); err != nil {
			return nil, err
		}
	}
	return dropped, nil
}

// readable is the width a title gets before names are put beside ids.
const readable = 40

// rank orders the cut columns for the room left: the kept-longest first,
// a column never dropped last.
func rank(c column) int {
	if c.drop == 0 {
		return math.MaxInt
	}
	return c.drop
}

// leftOut is the note after a table that could not show every column.
func leftOut(dropped []string) string {
	if len(dropped) == 0 {
		return ""
	}
	return fmt.Sprintf(" (left out to fit: %s; -o wide shows every column)", strings.Join(dropped, ", "))
}
