//! The embedded lease journal: an append-only file of framed records, synced before the server
//! answers, compacted when it grows.
//!
//! File layout: the 8-byte [`JOURNAL_MAGIC`], then records back to back, each
//! `length (4, big-endian) ‖ CRC-32 of the payload (4) ‖ payload`. Payload: a kind byte then
//! `1 = server DUID` (the DUID bytes), `2 = put binding` ([`Binding`]'s encoding),
//! `3 = remove binding` (the client key's encoding).
//!
//! Loading replays the records in order. A torn tail (a crash in the middle of an append: a
//! short header, a length running past the end, or a bad CRC on the last record) is reported
//! and truncated away; a bad CRC on a record followed by good ones is skipped with a warning.
//! No reply is ever sent for a record that was not completely synced, so neither loses an
//! acknowledged lease.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{BindingStore, StoredState};
use crate::binding::{decode_key, encode_key};
use crate::crc32::crc32;
use crate::{Binding, ClientKey, DhcpError};

/// First bytes of every journal file ("PSH6DHJ", format 1).
pub const JOURNAL_MAGIC: [u8; 8] = *b"PSH6DHJ\x01";
/// Largest payload accepted; anything longer is a torn or corrupt length field.
pub const MAX_RECORD_LEN: usize = 4096;
const HEADER_LEN: usize = 8;

const KIND_SERVER_DUID: u8 = 1;
const KIND_PUT: u8 = 2;
const KIND_REMOVE: u8 = 3;

/// Compaction runs once the file holds this many records and at least four times the live ones.
const COMPACT_MIN_RECORDS: u64 = 1024;

/// What loading found besides the records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Records applied.
    pub records: u64,
    /// Records skipped for a bad CRC or an undecodable payload.
    pub skipped: u64,
    /// Bytes of torn tail cut off (or, for a read-only load, ignored).
    pub truncated_bytes: u64,
    /// One line per problem, for the operator's log.
    pub warnings: Vec<String>,
}

/// The in-memory image the journal replays into.
#[derive(Debug, Default)]
struct Image {
    server_duid: Option<Vec<u8>>,
    bindings: BTreeMap<ClientKey, Binding>,
}

impl Image {
    fn state(&self) -> StoredState {
        StoredState {
            server_duid: self.server_duid.clone(),
            bindings: self.bindings.values().cloned().collect(),
        }
    }

    /// Applies one payload; false if it does not decode.
    fn apply(&mut self, payload: &[u8]) -> bool {
        let Some((&kind, body)) = payload.split_first() else {
            return false;
        };
        match kind {
            KIND_SERVER_DUID if !body.is_empty() => {
                self.server_duid = Some(body.to_vec());
                true
            }
            KIND_PUT => match Binding::decode(body) {
                Some(b) => {
                    self.bindings.insert(b.client.clone(), b);
                    true
                }
                None => false,
            },
            KIND_REMOVE => match decode_key(body) {
                Some(k) => {
                    self.bindings.remove(&k);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }
}

/// Replays `bytes` (a whole journal file). Returns the image, the report and the length of the
/// good prefix (where a torn tail starts).
fn replay(path: &Path, bytes: &[u8]) -> Result<(Image, LoadReport, u64), DhcpError> {
    let mut image = Image::default();
    let mut report = LoadReport::default();
    match bytes.get(..HEADER_LEN) {
        Some(h) if h == JOURNAL_MAGIC => {}
        // A crash while creating the file leaves a prefix of the magic (or nothing).
        _ if JOURNAL_MAGIC.starts_with(bytes) => {
            if !bytes.is_empty() {
                report.truncated_bytes = bytes.len() as u64;
                report
                    .warnings
                    .push(format!("{}: torn header rewritten", path.display()));
            }
            return Ok((image, report, 0));
        }
        _ => return Err(DhcpError::NotAJournal(path.to_path_buf())),
    }
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        let torn = |report: &mut LoadReport, why: &str| {
            let cut = (bytes.len() - pos) as u64;
            report.truncated_bytes = cut;
            report.warnings.push(format!(
                "{}: {why} at offset {pos}: dropping the last {cut} bytes (an append that never completed)",
                path.display()
            ));
        };
        let Some(head) = bytes.get(pos..pos + 8) else {
            torn(&mut report, "short record header");
            break;
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let end = pos + 8 + len;
        let payload = match bytes.get(pos + 8..end) {
            Some(p) if len <= MAX_RECORD_LEN => p,
            _ => {
                torn(&mut report, "record length past the end");
                break;
            }
        };
        if crc32(payload) != crc {
            if end == bytes.len() {
                torn(&mut report, "bad CRC on the last record");
                break;
            }
            report.skipped += 1;
            report.warnings.push(format!(
                "{}: bad CRC on the record at offset {pos}: skipped",
                path.display()
            ));
        } else if image.apply(payload) {
            report.records += 1;
        } else {
            report.skipped += 1;
            report.warnings.push(format!(
                "{}: undecodable record at offset {pos}: skipped",
                path.display()
            ));
        }
        pos = end;
    }
    let good = (bytes.len() as u64).saturating_sub(report.truncated_bytes);
    Ok((image, report, good))
}

/// Frames one payload: length, CRC, payload.
fn frame(payload: &[u8]) -> Result<Vec<u8>, DhcpError> {
    if payload.len() > MAX_RECORD_LEN {
        return Err(DhcpError::RecordTooLarge("journal record"));
    }
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32(payload).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

fn put_payload(b: &Binding) -> Result<Vec<u8>, DhcpError> {
    let mut p = vec![KIND_PUT];
    b.encode(&mut p)?;
    Ok(p)
}

fn duid_payload(duid: &[u8]) -> Vec<u8> {
    let mut p = vec![KIND_SERVER_DUID];
    p.extend_from_slice(duid);
    p
}

/// Syncs a directory so a create or rename in it is durable.
fn sync_dir(path: &Path) -> Result<(), DhcpError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DhcpError::io(format!("syncing directory {}", dir.display()), e))
}

/// The journal-file [`BindingStore`].
#[derive(Debug)]
pub struct JournalStore {
    path: PathBuf,
    file: File,
    image: Image,
    /// Records in the file (live or superseded), for the compaction trigger.
    records_in_file: u64,
    compaction_failures: u64,
}

impl JournalStore {
    /// Opens (or creates) the journal at `path`, replays it and cuts off a torn tail. Refuses a
    /// file that is not a journal.
    pub fn open(path: &Path) -> Result<(Self, LoadReport), DhcpError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(DhcpError::io(format!("reading {}", path.display()), e)),
        };
        let (image, report, good) = replay(path, &bytes)?;
        let io = |what: &str| {
            let what = format!("{what} {}", path.display());
            move |e| DhcpError::io(what, e)
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io("opening"))?;
        if good < HEADER_LEN as u64 {
            // New (or torn during creation): start with the header.
            file.set_len(0).map_err(io("truncating"))?;
            file.write_all(&JOURNAL_MAGIC).map_err(io("writing"))?;
            file.sync_all().map_err(io("syncing"))?;
            sync_dir(path)?;
        } else if good < bytes.len() as u64 {
            file.set_len(good).map_err(io("truncating"))?;
            file.sync_all().map_err(io("syncing"))?;
        }
        let store = Self {
            path: path.to_path_buf(),
            file,
            image,
            records_in_file: report.records + report.skipped,
            compaction_failures: 0,
        };
        Ok((store, report))
    }

    /// Reads a journal without changing it (a torn tail is reported, not cut), e.g. to dump
    /// the bindings of a running server.
    pub fn read(path: &Path) -> Result<(StoredState, LoadReport), DhcpError> {
        let bytes =
            fs::read(path).map_err(|e| DhcpError::io(format!("reading {}", path.display()), e))?;
        let (image, report, _) = replay(path, &bytes)?;
        Ok((image.state(), report))
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records in the file, superseded ones included.
    pub fn records_in_file(&self) -> u64 {
        self.records_in_file
    }

    /// Rewrites the live state (server DUID and bindings) into a new file, syncs it, renames it
    /// over the journal and syncs the directory, so a crash leaves either the old or the new
    /// file whole.
    pub fn compact(&mut self) -> Result<(), DhcpError> {
        let tmp = self.path.with_extension("compacting");
        let io = |what: &str, p: &Path| {
            let what = format!("{what} {}", p.display());
            move |e| DhcpError::io(what, e)
        };
        let mut out = Vec::from(JOURNAL_MAGIC);
        let mut records = 0;
        if let Some(d) = &self.image.server_duid {
            out.extend(frame(&duid_payload(d))?);
            records += 1;
        }
        for b in self.image.bindings.values() {
            out.extend(frame(&put_payload(b)?)?);
            records += 1;
        }
        let mut f = File::create(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(&out).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(io("renaming onto", &self.path))?;
        sync_dir(&self.path)?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io("reopening", &self.path))?;
        self.records_in_file = records;
        Ok(())
    }

    /// Appends one record and syncs it (data only: the length change is part of the data).
    fn append(&mut self, payload: &[u8]) -> Result<(), DhcpError> {
        let framed = frame(payload)?;
        let what = |op: &str| format!("{op} journal {}", self.path.display());
        self.file
            .write_all(&framed)
            .map_err(|e| DhcpError::io(what("appending to"), e))?;
        self.file
            .sync_data()
            .map_err(|e| DhcpError::io(what("syncing"), e))?;
        self.records_in_file += 1;
        Ok(())
    }

    /// Compacts when superseded records dominate. Runs after the image took the new record.
    /// A failed compaction loses nothing (the old file stays whole): it is counted and retried
    /// at the next trigger, and the write that triggered it still succeeds.
    fn maybe_compact(&mut self) {
        let live = self.image.bindings.len() as u64 + 1;
        if self.records_in_file >= COMPACT_MIN_RECORDS
            && self.records_in_file >= 4 * live
            && self.compact().is_err()
        {
            self.compaction_failures += 1;
        }
    }

    /// Compactions that failed (the journal kept growing instead).
    pub fn compaction_failures(&self) -> u64 {
        self.compaction_failures
    }
}

impl BindingStore for JournalStore {
    fn load(&mut self) -> Result<StoredState, DhcpError> {
        Ok(self.image.state())
    }

    fn set_server_duid(&mut self, duid: &[u8]) -> Result<(), DhcpError> {
        self.append(&duid_payload(duid))?;
        self.image.server_duid = Some(duid.to_vec());
        self.maybe_compact();
        Ok(())
    }

    fn put(&mut self, binding: &Binding) -> Result<(), DhcpError> {
        self.append(&put_payload(binding)?)?;
        self.image
            .bindings
            .insert(binding.client.clone(), binding.clone());
        self.maybe_compact();
        Ok(())
    }

    fn remove(&mut self, client: &ClientKey) -> Result<(), DhcpError> {
        let mut p = vec![KIND_REMOVE];
        encode_key(client, &mut p)?;
        self.append(&p)?;
        self.image.bindings.remove(client);
        self.maybe_compact();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
