// Package audit is cutover's tamper-evident log: every change, measurement,
// decision and approval, as records that form a hash chain (each holds the
// SHA-256 of its predecessor's canonical encoding) with checkpoints signed
// by an ed25519 key. Verify proves a log whole and names the first bad
// record after any edit, deletion, insertion, reordering or cut.
//
// The log does the chaining and signing; stores keep the records: the
// append-only file of audit/file (the default) and the PostgreSQL table of
// audit/postgres. Both register a URL scheme and pass audit/audittest.Run.
// docs/audit.md specifies the encoding so an auditor can verify a log
// without cutover.
package audit
