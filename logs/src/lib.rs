//! Vigie's signed logs: who saw what and why, which posts retention deleted, who was
//! re-identified — kept in files that an oversight body can check offline with nothing but the
//! public key.
//!
//! # Concepts
//!
//! - **Entry.** One JSON line `{"seq":N,"prev":"<hex>","body":{...}}` whose body is an
//!   [`Access`]. Entries are **hash-chained**: the hash of entry N covers its seq, the hash of
//!   entry N-1 (`prev`) and the SHA-256 of its body's bytes, so changing, removing, inserting or
//!   moving an entry changes the hash of every entry after it. The bytes hashed and signed are
//!   defined in [`access_log::chain`], the rules in prose in [`access_log`].
//! - **Checkpoint.** An ed25519 signature, by the key that `vigie keys init` makes
//!   ([`access_log::init_keys`]), of a seq and the hash of that entry: it commits to every entry
//!   up to it. The writer signs one when it creates a log (seq 0), at the end of every group
//!   commit, on a heartbeat while idle, when it reopens a log after a crash, and when it closes.
//! - **Domains.** The three logs ([`LogKind`]) share the format and the key, not the domain
//!   string that prefixes every hashed and signed message: `vigie-access-log/v1` (the API's
//!   accesses, `<data_dir>/access-log/`), `vigie-retention-log/v1` (retention's deletion
//!   batches, `<data_dir>/retention-log/`, see [`retention`]) and `vigie-reidentify-log/v1`
//!   (`vigie reidentify`, `<data_dir>/reidentify-log/`, see [`reidentify`]). No entry, checkpoint or seal of one log
//!   passes for one of another.
//! - **Heads.** Signed checkpoints, published as the writer makes them to a heads file outside
//!   the data dir ([`access_log::LogBuilder::heads_file`], lines of [`access_log::chain::Head`])
//!   and, optionally, to a sink such as a Kafka topic ([`access_log::HeadSink`]). A log cut back
//!   or rewritten after a head was published no longer holds it.
//! - **Export.** The stretch of the chain around the entries a filter selects, the others shown
//!   as their body digest, closed by a signed seal of its range, count and filter
//!   ([`AccessLog::plan_export`]); streamed, never held in memory whole.
//! - **Verify.** [`verify_log`] and [`verify_export`] recompute the chain and check every
//!   signature against the public key they are given (never one the file names), and, with
//!   [`Checks`], the kind of log and the published heads; they name the first break
//!   ([`Tamper`]).
//!
//! # Guarantees
//!
//! - **No access served unlogged.** [`AccessLog::append`] returns only once the entry, and the
//!   checkpoint that ends its group commit, are written and fsynced. The API answers a request
//!   only after its entry is appended, and answers an error instead of the data when it cannot
//!   be (a full queue: [`LogError::Busy`], 503). In the same way retention deletes nothing
//!   before its batch is durable in the retention log ([`Retention::enforce`]).
//! - **Tamper evidence.** An altered, removed, inserted or reordered entry breaks the chain at
//!   that entry; a log rewritten without the key loses its signatures; the writer refuses to
//!   open a log that does not verify for its kind, that was emptied, deleted (its creation
//!   marker remains) or cut below a published head, or that holds more unsigned entries than
//!   one group commit. Cutting a log back to one of its own earlier checkpoints needs no key:
//!   that shows as a gap in the heartbeat's checkpoints and, above all, against the published
//!   heads.
//! - **What verify proves.** That the entries up to the last checkpoint (for an export: up to
//!   its seal) are exactly those the holder of the signing key signed for that kind of log;
//!   for an export, also that it holds as many entries in full as its seal says were selected,
//!   each selected by the seal's filter; with heads, that no published head of its range is
//!   missing. It proves nothing about the few entries after the last checkpoint (at most one
//!   group commit, the trace of a crash), nor about what the holder of the signing key may have
//!   signed instead.
//!
//! # Modules
//!
//! [`access_log`]: the writer of any of the three logs ([`AccessLog`], one thread, group
//! commits, an exclusive lock), its keys, exports, verification and the lookup of the accesses
//! to a post. [`retention`]: the retention log and its enforcement, [`Retention`].
//! [`reidentify`]: the re-identification log, appended to before a handle is shown.

pub mod access_log;
pub mod reidentify;
pub mod retention;

pub use access_log::{
    verify_export, verify_log, Access, AccessLog, Checks, ExportFilter, LogError, LogKind,
    LogOptions, Report, Tamper,
};
pub use retention::{Retention, RetentionError, RetentionReport, Target};
