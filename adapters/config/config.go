// Package config loads whistle's files: the directory (routing and SLA policy)
// and the principals (who may call the API, by the SHA-256 of their token).
//
// Decoding is strict: a syntax error, a value of the wrong type, an unknown or
// repeated field and an invalid value all stop loading with a *FileError that
// names the file, the JSON path ("$.categories[2].lead") and, where it can,
// the line and column, so that an operator can fix a file without guessing.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// FileError says where a file is wrong. Match it with errors.As; Unwrap gives
// the cause when there is one (a *domain.DirectoryError, a *json.SyntaxError,
// an fs error such as fs.ErrNotExist or fs.ErrExist).
type FileError struct {
	// Kind is what the file holds: "directory" or "principals".
	Kind string
	// File is the file's path as given, or a name for embedded data.
	File string
	// Path is a JSON path such as "$.streets[0].communities[1].units[0]";
	// "$" is the whole document; empty when the file could not be read or
	// written, or is not valid JSON (then Line and Column say where).
	Path string
	// Line and Column locate the offending value, from 1; 0 when unknown
	// (for example, a required field that is missing). Column counts
	// characters, not bytes.
	Line, Column int
	// Problem says what is wrong, with the offending value.
	Problem string
	// Err is the underlying error, if any.
	Err error
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind)
	b.WriteByte(' ')
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

// fileIOError wraps a failure to read or write a file. The problem drops the
// *fs.PathError's own copy of the path, which Error already prints.
func fileIOError(kind, file, verb string, err error) *FileError {
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == file {
		cause = pe.Err
	}
	return &FileError{Kind: kind, File: file, Problem: verb + ": " + cause.Error(), Err: err}
}
