//! An agent older than protocol version 3 (a fake that answers WELCOME with version 2 and acknowledges every
//! frame): the crate defines its histograms with classic buckets only and sends no native bucket indexes, which
//! such an agent would refuse.

use danube_metrics::wire::{self, Delta, Frame, Kind, Limits, Welcome};
use danube_metrics::{counter, histogram};
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const AF_UNIX: c_int = 1;
const SOCK_SEQPACKET: c_int = 5;

#[repr(C)]
struct SockaddrUn {
    sun_family: u16,
    sun_path: [u8; 108],
}

extern "C" {
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn bind(fd: c_int, address: *const SockaddrUn, length: u32) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn accept(fd: c_int, address: *mut c_void, length: *mut u32) -> c_int;
    fn send(fd: c_int, buffer: *const c_void, length: usize, flags: c_int) -> isize;
    fn recv(fd: c_int, buffer: *mut c_void, length: usize, flags: c_int) -> isize;
}

/// Listens on `path` and serves one connection at a time as a version 2 agent, keeping every frame it receives.
fn old_agent(path: &str) -> Arc<Mutex<Vec<Frame>>> {
    let mut address = SockaddrUn { sun_family: AF_UNIX as u16, sun_path: [0; 108] };
    address.sun_path[..path.len()].copy_from_slice(path.as_bytes());
    // SAFETY: plain socket calls on a descriptor this function owns; `address` outlives `bind`.
    let listener = unsafe {
        let fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        assert!(fd >= 0 && bind(fd, &address, std::mem::size_of::<SockaddrUn>() as u32) == 0 && listen(fd, 4) == 0);
        fd
    };
    let frames = Arc::new(Mutex::new(Vec::new()));
    let kept = frames.clone();
    std::thread::spawn(move || loop {
        // SAFETY: `listener` stays open for the process; null address arguments are allowed.
        let fd = unsafe { accept(listener, std::ptr::null_mut(), std::ptr::null_mut()) };
        if fd < 0 {
            return;
        }
        let mut buffer = vec![0u8; 1 << 17];
        loop {
            // SAFETY: `buffer` is valid for its length for the call.
            let n = unsafe { recv(fd, buffer.as_mut_ptr().cast(), buffer.len(), 0) };
            if n <= 0 {
                break;
            }
            for frame in
                wire::decode_record(&buffer[..n as usize], &Limits::default()).expect("frames a version 2 agent reads")
            {
                let answer = match &frame {
                    Frame::Hello(_) => Some(Frame::Welcome(Welcome {
                        version: 2,
                        max_frame_bytes: 65_536,
                        max_series: 100_000,
                        last_applied: 0,
                    })),
                    Frame::Define { sequence, .. } | Frame::Deltas { sequence, .. } => Some(Frame::Ack(*sequence)),
                    _ => None,
                };
                kept.lock().unwrap().push(frame);
                if let Some(answer) = answer {
                    let bytes = wire::encode(&answer);
                    // SAFETY: `bytes` is valid for its length for the call.
                    unsafe { send(fd, bytes.as_ptr().cast(), bytes.len(), 0) };
                }
            }
        }
    });
    frames
}

/// Removes the test's directory however the test ends (a failed assertion included).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn an_agent_older_than_version_3_gets_classic_buckets_only() {
    let directory = TempDir(std::env::temp_dir().join(format!("dma-rust-old-agent-{}", std::process::id())));
    std::fs::create_dir_all(&directory.0).unwrap();
    let path = directory.0.join("ingest.sock");
    let _ = std::fs::remove_file(&path);
    let frames = old_agent(path.to_str().unwrap());
    let handle = danube_metrics::install(danube_metrics::Config {
        socket: Some(path.clone()),
        flush_interval: Duration::from_millis(20),
        log: Some(|_, _| {}),
        process_metrics: false,
        ..Default::default()
    })
    .expect("install");
    let latency = histogram!("danube_producer_send_latency_ms", "topic" => "/default/orders");
    for value in [0.01, 0.5, 3.0, 700.0] {
        latency.record(value);
    }
    counter!("danube_topic_messages_in_total", "topic" => "/default/orders").increment(4);
    assert!(handle.wait_until_delivered(Duration::from_secs(10)), "{:?}", handle.stats());
    let frames = frames.lock().unwrap();
    let definitions: Vec<_> = frames
        .iter()
        .filter_map(|f| if let Frame::Define { definitions, .. } = f { Some(definitions) } else { None })
        .flatten()
        .collect();
    let histogram = definitions.iter().find(|d| d.kind == Kind::Histogram).expect("the histogram was defined");
    assert_eq!(histogram.native, None, "no native buckets on a version 2 connection");
    let classic = histogram.bounds.len() as u32 + 1;
    let mut observations = 0;
    for frame in frames.iter() {
        if let Frame::Deltas { deltas, .. } = frame {
            for delta in deltas {
                if let Delta::Histogram { buckets, .. } = delta {
                    assert!(buckets.iter().all(|(index, _)| *index < classic), "native indexes sent: {buckets:?}");
                    observations += buckets.iter().map(|(_, count)| count).sum::<u64>();
                }
            }
        }
    }
    assert_eq!(observations, 4, "every observation reached the classic buckets");
    drop(frames);
    handle.shutdown();
}
