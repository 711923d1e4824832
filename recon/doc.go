// Package recon turns the journal and the ledger into what the finance
// office works with: the business day's export files, the matching of a
// counterparty's file against them with its discrepancies and their
// resolution, settlement per merchant and period, and daily reports
// (docs/reconciliation.md).
//
// It sits below the switch: it reads the journal and the ledger through
// their packages and a Pebble reader, and keeps its own records (imports,
// discrepancies, merchant rate history) under the key prefix 'R'.
package recon
