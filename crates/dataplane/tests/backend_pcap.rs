//! pcap replay backend: frames and timestamps survive a replay, errors surface, nothing panics.
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use dataplane::backend::pcap::{self, PcapQueue};
use dataplane::backend::BufPool;
use dataplane::buf::HeapBuf;
use dataplane::io::{PortQueue, BURST};
use proptest::prelude::*;
use wire::pcap::{PcapReader, PcapRecord, PcapWriter};

fn capture(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for (t, f) in records {
        w.write_frame(*t, f).unwrap();
    }
    w.into_inner().unwrap()
}

fn read_all(bytes: &[u8]) -> Vec<PcapRecord> {
    let mut r = PcapReader::new(bytes).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        out.push(rec);
    }
    out
}

fn sample(n: usize) -> Vec<(u64, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let len = 60 + (i * 37) % 1400;
            let frame: Vec<u8> = (0..len).map(|j| (i * 7 + j) as u8).collect();
            (
                1_000_000_000 * i as u64 + 123_456_789 * (i as u64 % 3),
                frame,
            )
        })
        .collect()
}

/// A queue replaying the capture `bytes`, transmitting into an in-memory capture.
fn replay_queue<'a>(bytes: &'a [u8], pool: &Arc<BufPool>) -> PcapQueue<&'a [u8], Vec<u8>> {
    let reader = PcapReader::new(bytes).unwrap();
    PcapQueue::new(
        Some(reader),
        Some(PcapWriter::new(Vec::new()).unwrap()),
        pool,
    )
}

/// Receives one frame at a time and transmits it at once: the replay loop of `pshim6 replay`.
fn replay<R, W>(q: &mut PcapQueue<R, W>) -> u64
where
    R: std::io::Read + Send,
    W: std::io::Write + Send,
{
    let mut burst: Vec<HeapBuf> = Vec::with_capacity(BURST);
    let mut n = 0;
    while !q.is_exhausted() {
        if q.rx_burst(&mut burst, 1) == 1 {
            n += q.tx_burst(&mut burst) as u64;
        }
    }
    n
}

#[test]
fn frames_and_timestamps_round_trip() {
    let input = sample(50);
    let pool = Arc::new(BufPool::new(8, 2048));
    let bytes = capture(&input);
    let mut q = replay_queue(&bytes, &pool);
    assert_eq!(replay(&mut q), 50);
    let s = q.stats();
    assert_eq!(
        (s.rx_packets, s.tx_packets, s.rx_dropped, s.tx_dropped),
        (50, 50, 0, 0)
    );
    assert_eq!(q.frames_written(), 50);
    assert_eq!(q.clock_nanos(), input[49].0);
    let out = q.finish().unwrap().unwrap();
    let got: Vec<(u64, Vec<u8>)> = read_all(&out)
        .into_iter()
        .map(|r| (r.nanos, r.frame))
        .collect();
    assert_eq!(got, input);
    assert_eq!(pool.available(), 8);
}

#[test]
fn microsecond_capture_keeps_its_time_in_nanoseconds() {
    // A classic little-endian microsecond capture written by hand: one 4-byte frame at
    // 3 s + 250 000 µs.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&4u16.to_le_bytes());
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&65_535u32.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    for v in [3u32, 250_000, 4, 4] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
    let pool = Arc::new(BufPool::new(2, 64));
    let mut q = replay_queue(&bytes, &pool);
    assert_eq!(replay(&mut q), 1);
    let out = q.finish().unwrap().unwrap();
    let recs = read_all(&out);
    assert_eq!(
        recs,
        vec![PcapRecord {
            nanos: 3_250_000_000,
            frame: vec![0xaa, 0xbb, 0xcc, 0xdd]
        }]
    );
    // Nanosecond magic, little endian, as wire::pcap writes it.
    assert_eq!(&out[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
}

#[test]
fn files_round_trip_and_bursts_share_the_last_input_time() {
    let dir = std::env::temp_dir().join(format!("pshim6-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (inp, outp) = (dir.join("in.pcap"), dir.join("out.pcap"));
    let input = sample(40);
    std::fs::write(&inp, capture(&input)).unwrap();
    let pool = Arc::new(BufPool::new(64, 2048));
    let mut q = pcap::open_files(Some(&inp), Some(&outp), &pool).unwrap();
    let mut burst = Vec::with_capacity(BURST);
    assert_eq!(q.rx_burst(&mut burst, BURST), 32);
    assert_eq!(q.tx_burst(&mut burst), 32);
    assert_eq!(q.rx_burst(&mut burst, BURST), 8);
    assert!(q.is_exhausted());
    assert_eq!(q.tx_burst(&mut burst), 8);
    q.finish().unwrap();
    let out = read_all(&std::fs::read(&outp).unwrap());
    assert_eq!(out.len(), 40);
    for (i, rec) in out.iter().enumerate() {
        assert_eq!(rec.frame, input[i].1);
        let burst_last = if i < 32 { 31 } else { 39 };
        assert_eq!(rec.nanos, input[burst_last].0, "frame {i}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(pcap::open_files(Some(&dir.join("missing.pcap")), None, &pool).is_err());
}

#[test]
fn busy_pool_delays_the_replay_without_losing_frames() {
    let input = sample(5);
    let pool = Arc::new(BufPool::new(2, 2048));
    let bytes = capture(&input);
    let mut q = replay_queue(&bytes, &pool);
    let mut burst = Vec::with_capacity(BURST);
    assert_eq!(q.rx_burst(&mut burst, BURST), 2);
    assert_eq!(q.rx_burst(&mut burst, BURST), 0);
    assert!(!q.is_exhausted());
    assert_eq!(q.tx_burst(&mut burst), 2);
    while !q.is_exhausted() {
        q.rx_burst(&mut burst, BURST);
        q.tx_burst(&mut burst);
    }
    let out = read_all(&q.finish().unwrap().unwrap());
    assert_eq!(
        out.iter().map(|r| r.frame.clone()).collect::<Vec<_>>(),
        input.iter().map(|r| r.1.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn oversized_frame_is_dropped_and_counted() {
    let input = vec![
        (1, vec![1u8; 100]),
        (2, vec![2u8; 3000]),
        (3, vec![3u8; 100]),
    ];
    let pool = Arc::new(BufPool::new(4, 2048));
    let bytes = capture(&input);
    let mut q = replay_queue(&bytes, &pool);
    assert_eq!(replay(&mut q), 2);
    assert_eq!(q.stats().rx_dropped, 1);
    let out = read_all(&q.finish().unwrap().unwrap());
    assert_eq!(out.iter().map(|r| r.nanos).collect::<Vec<_>>(), vec![1, 3]);
}

#[test]
fn corrupt_record_ends_the_replay_with_an_error() {
    let mut bytes = capture(&sample(3));
    // Claim a huge second record: the reader refuses it.
    let second = 24 + 16 + sample(3)[0].1.len();
    bytes[second + 8..second + 12].copy_from_slice(&200_000u32.to_le_bytes());
    let pool = Arc::new(BufPool::new(4, 2048));
    let mut q = replay_queue(&bytes, &pool);
    assert_eq!(replay(&mut q), 1);
    assert!(q.is_exhausted());
    assert!(q.error().is_some());
    assert!(q.finish().is_err());
    assert_eq!(pool.available(), 4);
}

#[test]
fn without_output_transmitted_frames_are_dropped() {
    let pool = Arc::new(BufPool::new(4, 2048));
    let mut q: PcapQueue<&[u8], Vec<u8>> = PcapQueue::new(None, None, &pool);
    assert!(q.is_exhausted());
    let mut burst = vec![HeapBuf::from_slice(&[1, 2, 3])];
    assert_eq!(q.tx_burst(&mut burst), 0);
    assert_eq!(q.stats().tx_dropped, 1);
    assert!(q.finish().unwrap().is_none());
}

proptest! {
    #[test]
    fn arbitrary_capture_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = capture(&[]);
        bytes.extend_from_slice(&tail);
        let pool = Arc::new(BufPool::new(4, 256));
        let mut q = replay_queue(&bytes, &pool);
        let mut burst = Vec::with_capacity(BURST);
        let mut rounds = 0;
        while !q.is_exhausted() && rounds < 1000 {
            q.rx_burst(&mut burst, BURST);
            q.tx_burst(&mut burst);
            rounds += 1;
        }
        prop_assert!(q.is_exhausted());
        prop_assert_eq!(pool.available(), 4);
    }
}
