use super::*;
use crate::binding::tests::sample;
use crate::BindingState;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "pshim6-dhcp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn file(&self) -> PathBuf {
        self.0.join("j")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn binding(n: u8) -> Binding {
    let mut b = sample();
    b.client.duid = vec![0, 3, 0, 1, n, n, n];
    b.client.iaid = u32::from(n);
    b.modifier = [n; 16];
    b
}

#[test]
fn reopen_replays_puts_removes_and_duid() {
    let dir = TempDir::new("replay");
    let (mut j, report) = JournalStore::open(&dir.file()).unwrap();
    assert_eq!(report, LoadReport::default());
    assert_eq!(fs::read(dir.file()).unwrap(), JOURNAL_MAGIC);
    j.set_server_duid(&[0, 4, 1, 2, 3]).unwrap();
    for n in 1..=3 {
        j.put(&binding(n)).unwrap();
    }
    let mut updated = binding(2);
    updated.state = BindingState::Declined;
    j.put(&updated).unwrap();
    j.remove(&binding(3).client).unwrap();
    drop(j);

    let (mut j, report) = JournalStore::open(&dir.file()).unwrap();
    assert_eq!(report.records, 6);
    assert!(report.warnings.is_empty());
    let state = j.load().unwrap();
    assert_eq!(state.server_duid.as_deref(), Some(&[0, 4, 1, 2, 3][..]));
    assert_eq!(state.bindings, vec![binding(1), updated]);
    assert_eq!(JournalStore::read(&dir.file()).unwrap().0, state);
}

#[test]
fn crash_at_every_byte_of_the_last_record_keeps_complete_records() {
    let dir = TempDir::new("torn");
    let (mut j, _) = JournalStore::open(&dir.file()).unwrap();
    j.set_server_duid(&[0, 4, 9, 9]).unwrap();
    j.put(&binding(1)).unwrap();
    j.put(&binding(2)).unwrap();
    let before_last = fs::metadata(dir.file()).unwrap().len();
    j.put(&binding(3)).unwrap();
    drop(j);
    let full = fs::read(dir.file()).unwrap();
    let full_state = JournalStore::read(&dir.file()).unwrap().0;
    assert_eq!(full_state.bindings.len(), 3);

    for cut in before_last..full.len() as u64 {
        fs::write(dir.file(), &full[..cut as usize]).unwrap();
        let (mut j, report) = JournalStore::open(&dir.file()).unwrap();
        let state = j.load().unwrap();
        assert_eq!(state.bindings, vec![binding(1), binding(2)], "cut at {cut}");
        assert_eq!(state.server_duid.as_deref(), Some(&[0, 4, 9, 9][..]));
        let torn = cut - before_last;
        assert_eq!(report.truncated_bytes, torn, "cut at {cut}");
        assert_eq!(report.warnings.len(), usize::from(torn > 0), "cut at {cut}");
        // The tail is gone from the file, so the next append lands on a record boundary.
        assert_eq!(fs::metadata(dir.file()).unwrap().len(), before_last);
        j.put(&binding(4)).unwrap();
        drop(j);
        let again = JournalStore::read(&dir.file()).unwrap();
        assert_eq!(again.0.bindings.len(), 3, "cut at {cut}");
        assert!(again.1.warnings.is_empty());
    }
}

#[test]
fn crash_while_creating_the_file_restarts_it() {
    let dir = TempDir::new("hdr");
    for cut in 0..JOURNAL_MAGIC.len() {
        fs::write(dir.file(), &JOURNAL_MAGIC[..cut]).unwrap();
        let (mut j, report) = JournalStore::open(&dir.file()).unwrap();
        assert_eq!(report.truncated_bytes, cut as u64);
        assert!(j.load().unwrap().bindings.is_empty());
        assert_eq!(fs::read(dir.file()).unwrap(), JOURNAL_MAGIC);
    }
}

#[test]
fn foreign_file_is_refused_and_untouched() {
    let dir = TempDir::new("foreign");
    fs::write(dir.file(), b"hello, not a journal").unwrap();
    assert!(matches!(
        JournalStore::open(&dir.file()),
        Err(DhcpError::NotAJournal(_))
    ));
    assert_eq!(fs::read(dir.file()).unwrap(), b"hello, not a journal");
}

#[test]
fn corrupt_crc_in_the_middle_is_skipped_with_a_warning() {
    let dir = TempDir::new("crc");
    let (mut j, _) = JournalStore::open(&dir.file()).unwrap();
    j.put(&binding(1)).unwrap();
    let second = fs::metadata(dir.file()).unwrap().len() as usize;
    j.put(&binding(2)).unwrap();
    j.put(&binding(3)).unwrap();
    drop(j);
    let mut bytes = fs::read(dir.file()).unwrap();
    // Flip a payload byte of the second record (past its 8-byte frame header).
    bytes[second + 20] ^= 0x55;
    fs::write(dir.file(), &bytes).unwrap();

    let (mut j, report) = JournalStore::open(&dir.file()).unwrap();
    assert_eq!(report.skipped, 1);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(report.warnings.len(), 1);
    assert!(
        report.warnings[0].contains("bad CRC"),
        "{:?}",
        report.warnings
    );
    assert_eq!(j.load().unwrap().bindings, vec![binding(1), binding(3)]);
    // A skipped record in the middle is not cut: later records stay.
    assert_eq!(fs::read(dir.file()).unwrap(), bytes);
}

#[test]
fn bad_crc_on_the_last_record_is_a_torn_tail() {
    let dir = TempDir::new("crclast");
    let (mut j, _) = JournalStore::open(&dir.file()).unwrap();
    j.put(&binding(1)).unwrap();
    let last = fs::metadata(dir.file()).unwrap().len();
    j.put(&binding(2)).unwrap();
    drop(j);
    let mut bytes = fs::read(dir.file()).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    fs::write(dir.file(), &bytes).unwrap();
    let (mut j, report) = JournalStore::open(&dir.file()).unwrap();
    assert_eq!(j.load().unwrap().bindings, vec![binding(1)]);
    assert_eq!(report.truncated_bytes, n as u64 - last);
    assert_eq!(fs::metadata(dir.file()).unwrap().len(), last);
}

#[test]
fn compaction_keeps_the_live_state_and_shrinks_the_file() {
    let dir = TempDir::new("compact");
    let (mut j, _) = JournalStore::open(&dir.file()).unwrap();
    j.set_server_duid(&[0, 4, 7, 7]).unwrap();
    // Rewriting one binding many times triggers automatic compaction.
    let mut b = binding(1);
    for i in 0..3000u64 {
        b.valid_until = i;
        j.put(&b).unwrap();
    }
    j.put(&binding(2)).unwrap();
    assert!(
        j.records_in_file() < COMPACT_MIN_RECORDS,
        "{}",
        j.records_in_file()
    );
    assert_eq!(j.compaction_failures(), 0);
    j.compact().unwrap();
    assert_eq!(j.records_in_file(), 3);
    drop(j);
    let (mut j, report) = JournalStore::open(&dir.file()).unwrap();
    assert_eq!(report.records, 3);
    let state = j.load().unwrap();
    assert_eq!(state.server_duid.as_deref(), Some(&[0, 4, 7, 7][..]));
    assert_eq!(state.bindings, vec![b, binding(2)]);
    assert!(!dir.file().with_extension("compacting").exists());
}

#[test]
fn frame_bytes_are_pinned() {
    // length 3, CRC-32("abc") = 0x352441c2, payload.
    assert_eq!(
        frame(b"abc").unwrap(),
        [0, 0, 0, 3, 0x35, 0x24, 0x41, 0xc2, b'a', b'b', b'c']
    );
    assert!(frame(&[0; MAX_RECORD_LEN + 1]).is_err());
}

proptest::proptest! {
    #[test]
    fn replay_of_arbitrary_bytes_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let mut bytes = Vec::from(JOURNAL_MAGIC);
        bytes.extend(body);
        let _ = replay(Path::new("x"), &bytes);
    }
}
