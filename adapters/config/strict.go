package config

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// document is a JSON file being decoded. encoding/json alone cannot say where
// a problem is: its unknown-field error has no path, its type errors have no
// array indices, and an UnmarshalJSON method's error (a bad duration) has
// neither. So the file is first parsed into a tree that remembers every
// value's path and offset, the tree is checked against the Go type, and only
// then does encoding/json decode it, as the final authority.
type document struct {
	kind, file string
	data       []byte
	offsets    map[string]int // JSON path → byte offset of its value
}

// node is a parsed JSON value.
type node struct {
	kind       byte // '{', '[', '"', '0' (number), 'b' (true or false), 'z' (null)
	start, end int  // the value is data[start:end]
	text       string
	members    []member // objects, in file order
	elems      []*node  // arrays
}

type member struct {
	key      string
	keyStart int // where the key is, for errors about the key itself
	val      *node
}

// decodeStrict decodes data into v, which must be a pointer, refusing syntax
// errors, trailing data, repeated keys, unknown fields (matched exactly, not
// case-insensitively as encoding/json does) and values of the wrong type.
func decodeStrict(kind, file string, data []byte, v any) (*document, error) {
	d := &document{kind: kind, file: file, data: data, offsets: map[string]int{}}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return nil, d.errAt("$", 0, nil, "the file starts with a UTF-8 byte order mark; save it without one")
	}
	if !utf8.Valid(data) {
		// encoding/json would silently turn bad bytes into U+FFFD.
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return nil, d.errAt("", off, nil, "invalid UTF-8 (byte 0x%02x)", data[off])
	}
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off := int(se.Offset) - 1 // Offset counts the offending byte
			if off < 0 || strings.Contains(se.Error(), "unexpected end") {
				off = len(data)
			}
			return nil, d.errAt("", off, err, "invalid JSON: %v", err)
		}
		return nil, d.errAt("$", 0, err, "%v", err)
	}
	root, err := d.parse()
	if err != nil {
		return nil, d.errAt("$", 0, err, "%v", err)
	}
	if err := d.walk(root, "$"); err != nil {
		return nil, err
	}
	if err := d.check(root, reflect.TypeOf(v).Elem(), "$"); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// The checks above should have caught it; say what encoding/json says.
		path := "$"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			path = "$." + te.Field
		}
		return nil, d.errorf(path, err, "%v", err)
	}
	return d, nil
}

// errorf reports a problem at a JSON path, with its line and column when the
// path names a value in the file.
func (d *document) errorf(path string, cause error, format string, args ...any) *FileError {
	off, ok := d.offsets[path]
	if !ok {
		off = -1
	}
	return d.errAt(path, off, cause, format, args...)
}

// errAt reports a problem at a byte offset; a negative offset is unknown.
func (d *document) errAt(path string, off int, cause error, format string, args ...any) *FileError {
	e := &FileError{Kind: d.kind, File: d.file, Path: path, Problem: fmt.Sprintf(format, args...), Err: cause}
	if off >= 0 {
		e.Line, e.Column = lineCol(d.data, off)
	}
	return e
}

// lineCol turns a byte offset into a line and a column of characters, from 1.
func lineCol(data []byte, off int) (line, col int) {
	off = min(off, len(data))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return line, 1 + utf8.RuneCount(before[lineStart:])
}

// parse builds the tree of a document already known to be valid JSON.
func (d *document) parse() (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(d.data))
	dec.UseNumber()
	return d.parseValue(dec)
}

func (d *document) parseValue(dec *json.Decoder) (*node, error) {
	start := d.skip(int(dec.InputOffset()))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	n := &node{start: start}
	switch t := tok.(type) {
	case json.Delim:
		n.kind = byte(t)
		for dec.More() {
			if t == '{' {
				keyStart := d.skip(int(dec.InputOffset()))
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := d.parseValue(dec)
				if err != nil {
					return nil, err
				}
				n.members = append(n.members, member{key: k.(string), keyStart: keyStart, val: v})
			} else {
				v, err := d.parseValue(dec)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
	case string:
		n.kind, n.text = '"', t
	case json.Number:
		n.kind, n.text = '0', string(t)
	case bool:
		n.kind, n.text = 'b', strconv.FormatBool(t)
	case nil:
		n.kind, n.text = 'z', "null"
	}
	n.end = int(dec.InputOffset())
	return n, nil
}

// skip moves past whitespace and the separators that precede a value.
func (d *document) skip(off int) int {
	for off < len(d.data) {
		switch d.data[off] {
		case ' ', '\t', '\r', '\n', ':', ',':
			off++
		default:
			return off
		}
	}
	return off
}

// walk records the offset of every value and refuses repeated keys, which
// encoding/json would let the last one win.
func (d *document) walk(n *node, path string) error {
	d.offsets[path] = n.start
	seen := map[string]bool{}
	for _, m := range n.members {
		p := path + keyPath(m.key)
		if seen[m.key] {
			return d.errAt(p, m.keyStart, nil, "key %q appears twice (first at line %d)", m.key, d.line(d.offsets[p]))
		}
		seen[m.key] = true
		if err := d.walk(m.val, p); err != nil {
			return err
		}
	}
	for i, e := range n.elems {
		if err := d.walk(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

func (d *document) line(off int) int {
	l, _ := lineCol(d.data, off)
	return l
}

// keyPath writes an object key the way domain.Directory.Validate does
// ("$.sla.routine"), quoting only keys that would be ambiguous.
func keyPath(k string) string {
	plain := k != ""
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			plain = false
			break
		}
	}
	if plain {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// check refuses a value that does not fit type t. It covers the types whistle's
// files use; anything it does not know it leaves to encoding/json.
func (d *document) check(n *node, t reflect.Type, path string) error {
	if n.kind == 'z' {
		if t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface {
			return nil
		}
		return d.errAt(path, n.start, nil, "null is not allowed here: give %s or leave the field out", want(t))
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		u := reflect.New(t).Interface().(json.Unmarshaler)
		if err := u.UnmarshalJSON(d.data[n.start:n.end]); err != nil {
			return d.errAt(path, n.start, err, "%v", err)
		}
		return nil
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) && n.kind == '"' {
		u := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := u.UnmarshalText([]byte(n.text)); err != nil {
			return d.errAt(path, n.start, err, "%v", err)
		}
		return nil
	}
	mismatch := func() error {
		return d.errAt(path, n.start, nil, "want %s, got %s", want(t), got(n))
	}
	switch t.Kind() {
	case reflect.Pointer:
		return d.check(n, t.Elem(), path)
	case reflect.Interface:
		return nil
	case reflect.Struct:
		if n.kind != '{' {
			return mismatch()
		}
		fields, names := jsonFields(t)
		for _, m := range n.members {
			p := path + keyPath(m.key)
			f, ok := fields[m.key]
			if !ok {
				hint := ""
				for _, name := range names {
					if strings.EqualFold(name, m.key) {
						hint = fmt.Sprintf("; did you mean %q?", name)
					}
				}
				return d.errAt(p, m.keyStart, nil, "unknown field %q (known: %s)%s", m.key, strings.Join(names, ", "), hint)
			}
			if f.asString {
				continue // ",string" fields: encoding/json knows best
			}
			if err := d.check(m.val, f.typ, p); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.kind != '{' {
			return mismatch()
		}
		if t.Key().Kind() != reflect.String {
			return nil
		}
		for _, m := range n.members {
			if err := d.check(m.val, t.Elem(), path+keyPath(m.key)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			if n.kind != '"' {
				return mismatch()
			}
			return nil
		}
		if n.kind != '[' {
			return mismatch()
		}
		if t.Kind() == reflect.Array && len(n.elems) > t.Len() {
			return d.errAt(path, n.start, nil, "want at most %d elements, got %d", t.Len(), len(n.elems))
		}
		for i, e := range n.elems {
			if err := d.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.String:
		if n.kind != '"' {
			return mismatch()
		}
	case reflect.Bool:
		if n.kind != 'b' {
			return mismatch()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.kind != '0' {
			return mismatch()
		}
		if _, err := strconv.ParseInt(n.text, 10, t.Bits()); err != nil {
			return d.errAt(path, n.start, nil, "want %s, got %s", want(t), n.text)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.kind != '0' {
			return mismatch()
		}
		if _, err := strconv.ParseUint(n.text, 10, t.Bits()); err != nil {
			return d.errAt(path, n.start, nil, "want %s, got %s", want(t), n.text)
		}
	case reflect.Float32, reflect.Float64:
		if n.kind != '0' {
			return mismatch()
		}
		if _, err := strconv.ParseFloat(n.text, t.Bits()); err != nil {
			return d.errAt(path, n.start, nil, "%s is out of range", n.text)
		}
	}
	return nil
}

type field struct {
	typ      reflect.Type
	asString bool
}

// jsonFields lists a struct's JSON fields as encoding/json names them, and
// their names in declaration order for messages.
func jsonFields(t reflect.Type) (map[string]field, []string) {
	fields := map[string]field{}
	var names []string
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sf.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			inner, innerNames := jsonFields(ft)
			for _, n := range innerNames {
				if _, shadowed := fields[n]; !shadowed {
					fields[n] = inner[n]
					names = append(names, n)
				}
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		asString := false
		for o := range strings.SplitSeq(opts, ",") {
			asString = asString || o == "string"
		}
		if _, dup := fields[name]; !dup {
			names = append(names, name)
		}
		fields[name] = field{typ: sf.Type, asString: asString}
	}
	return fields, names
}

// want describes what a type takes in JSON.
func want(t reflect.Type) string {
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a " + t.Name()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return want(t.Elem())
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("an integer of %d bits", t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a non-negative integer of %d bits", t.Bits())
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}

// got describes a JSON value, quoting at most 40 characters of it.
func got(n *node) string {
	switch n.kind {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		s := n.text
		if utf8.RuneCountInString(s) > 40 {
			s = string([]rune(s)[:40]) + "…"
		}
		return "string " + strconv.Quote(s)
	case '0':
		return "number " + n.text
	}
	return n.text
}
