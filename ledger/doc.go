// Package ledger is the card ledger of cardswitch: the accounts of every
// card, merchant and settlement party, kept by double entry on Pebble.
//
// Money is integer fen (Fen), never floating point. Every operation is a set
// of postings that sums to zero; a purse never goes below zero; postings are
// immutable, so voids, refunds and reversals are new postings linked to the
// one they undo.
//
// The ledger never commits POS work on its own. Execute writes the postings,
// the new account states and the idempotency record into a batch the caller
// supplies, and lets the caller add its journal entries and commit the batch
// with sync (the one-synced-batch-per-transaction rule of
// docs/architecture.md). The account locks are held until that commit
// returns, and only then is the new state published in memory, so no later
// operation on the same card can become durable before an earlier one.
//
// Every key the ledger writes starts with the byte 'l'. The layout, the
// posting rules and the decline-reason table are in docs/ledger.md.
package ledger
