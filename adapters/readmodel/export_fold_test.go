package readmodel

import (
	"github.com/whistle-gov/whistle/domain"
)

// DecodeStoredForFold and DecodeStoredFast are the two decodings of a
// stored commit for a fold: with encoding/json, and with the scanners that
// FoldLog runs.
var (
	DecodeStoredForFold = decodeStoredForFold
	DecodeStoredFast    = decodeStoredFast
)

// DecodedEvents is the events' data a commit was decoded with for the
// fold (nil when not decoded, or when an event could not be).
func DecodedEvents(c Commit) []domain.Event { return c.decoded }
