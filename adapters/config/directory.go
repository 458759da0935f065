package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"time"
	// The calendar's zone is loaded from the tzdata built into the binary
	// when the machine has no zoneinfo (slim containers often have none).
	_ "time/tzdata"

	"github.com/whistle-gov/whistle/domain"
)

//go:embed sample-directory.json
var sampleDirectoryJSON []byte

// sampleName names the embedded sample in errors.
const sampleName = "embedded sample-directory.json"

// SampleDirectory returns the directory that ships with whistle, drawn from
// real street offices in Putian and Huian (Fujian), Jintang (Sichuan) and
// Guiyang (Guizhou). Each call returns a new, validated copy.
func SampleDirectory() (*domain.Directory, error) {
	return ParseDirectory(sampleName, sampleDirectoryJSON)
}

// SampleDirectoryJSON returns the sample directory's file, a starting point
// for an operator's own.
func SampleDirectoryJSON() []byte { return bytes.Clone(sampleDirectoryJSON) }

// LoadDirectory reads, strictly decodes and validates a directory file. Every
// error is a *FileError naming the file and the JSON path, for example
//
//	directory /etc/whistle/dir.json:57:69: $.categories[1].lead: unknown department or unit "water-burea"
func LoadDirectory(path string) (*domain.Directory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileIOError("directory", path, "cannot read", err)
	}
	return ParseDirectory(path, data)
}

// ParseDirectory is LoadDirectory for data already read; file names it in
// errors.
func ParseDirectory(file string, data []byte) (*domain.Directory, error) {
	var dir domain.Directory
	doc, err := decodeStrict("directory", file, data, &dir)
	if err != nil {
		return nil, err
	}
	loc, err := calendarZone(&dir)
	if err != nil {
		return nil, doc.errorf("$.calendar.time_zone", err, "%v", err)
	}
	if err := dir.ValidateIn(loc); err != nil {
		var de *domain.DirectoryError
		if errors.As(err, &de) {
			return nil, doc.errorf(de.Path, err, "%s", de.Problem)
		}
		return nil, doc.errorf("$", err, "%v", err)
	}
	if err := checkRepeats(doc, &dir); err != nil {
		return nil, err
	}
	return &dir, nil
}

// checkRepeats refuses what Validate lets through but the domain would turn
// into two assignments for one assignee on one case: a unit listed twice in a
// community, an assistant listed twice in a category.
func checkRepeats(doc *document, dir *domain.Directory) error {
	for i, s := range dir.Streets {
		for j, c := range s.Communities {
			seen := map[string]int{}
			for k, u := range c.Units {
				if first, dup := seen[u]; dup {
					return doc.errorf(fmt.Sprintf("$.streets[%d].communities[%d].units[%d]", i, j, k), nil,
						"unit %q is already listed at units[%d]", u, first)
				}
				seen[u] = k
			}
		}
	}
	for i, c := range dir.Categories {
		seen := map[string]int{}
		for k, a := range c.Assist {
			if first, dup := seen[a]; dup {
				return doc.errorf(fmt.Sprintf("$.categories[%d].assist[%d]", i, k), nil,
					"%q is already listed at assist[%d]", a, first)
			}
			seen[a] = k
		}
	}
	return nil
}

// calendarZone loads the time zone the directory's calendar names.
func calendarZone(dir *domain.Directory) (*time.Location, error) {
	zone := domain.DefaultTimeZone
	if dir.Calendar != nil && dir.Calendar.TimeZone != "" {
		zone = dir.Calendar.TimeZone
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (want an IANA name such as %q)", zone, domain.DefaultTimeZone)
	}
	return loc, nil
}

// ValidateDirectory validates a directory decoded elsewhere (a client that
// read GET /v1/directory), loading its calendar's time zone as LoadDirectory
// does. The error is a *domain.DirectoryError when the directory is wrong.
func ValidateDirectory(dir *domain.Directory) error {
	loc, err := calendarZone(dir)
	if err != nil {
		return &domain.DirectoryError{Path: "$.calendar.time_zone", Problem: err.Error()}
	}
	return dir.ValidateIn(loc)
}
