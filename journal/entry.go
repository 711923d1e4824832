package journal

import "github.com/cardswitch/cardswitch/journal/internal/record"

// The stored formats live in package record so that their decoders can be
// fuzzed without linking Pebble; these aliases are the public face.

// Entry is one journaled message. Raw holds the message bytes exactly as
// the caller gives them: the journal cannot parse ISO 8583, so the CALLER
// removes the PIN block (field 52), track data (35, 36) and key material
// (62 of an 0810) first. See record.Entry for every field and its bound.
type Entry = record.Entry

// Direction says whether a message came into the switch or went out.
type Direction = record.Direction

// Flags mark unusual entries.
type Flags = record.Flags

const (
	In  = record.In
	Out = record.Out

	FlagUndecodable  = record.FlagUndecodable
	FlagReplayed     = record.FlagReplayed
	FlagRawTruncated = record.FlagRawTruncated

	// MaxRawLen bounds Entry.Raw and ResponseRecord.Response.
	MaxRawLen = record.MaxRawLen
)

// Errors for entries that cannot be written or read.
var (
	// ErrInvalidEntry is wrapped by every validation error.
	ErrInvalidEntry = record.ErrInvalidEntry
	// ErrCorrupt is wrapped by every decoding error: a stored value that
	// does not decode means damage, never a normal outcome.
	ErrCorrupt = record.ErrCorrupt
)

// Field bounds used for keys and read arguments.
const (
	maxTerminalLen = record.MaxTerminalLen
	maxBatchLen    = record.MaxBatchLen
	maxSTANLen     = record.MaxSTANLen
	maxRRNLen      = record.MaxRRNLen
	dateLen        = record.DateLen
)

// DecodeEntry decodes a stored entry into e, leaving e.Seq alone; errors
// wrap ErrCorrupt.
func DecodeEntry(b []byte, e *Entry) error { return record.DecodeEntry(b, e) }

func validDate(s string) bool { return record.ValidDate(s) }
