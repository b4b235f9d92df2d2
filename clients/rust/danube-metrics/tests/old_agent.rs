//! An agent older than protocol version 3 (a fake that answers WELCOME with version 2 and acknowledges every
//! frame): the crate defines its histograms with classic buckets only and sends no native bucket indexes, which
//! such an agent would refuse; once the agent is upgraded (the same fake, version 3), the native counts it never
//! got are sent.

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
    fn shutdown(fd: c_int, how: c_int) -> c_int;
}

const SHUT_RDWR: c_int = 2;

/// A fake agent of one protocol version: every frame it received, and the descriptors `stop` shuts.
struct FakeAgent {
    frames: Arc<Mutex<Vec<Frame>>>,
    listener: c_int,
    connections: Arc<Mutex<Vec<c_int>>>,
}

impl FakeAgent {
    /// Shuts the listener and every connection (the emitter sees the agent go) and removes the socket file.
    fn stop(&self, path: &std::path::Path) {
        // SAFETY: shutdown on descriptors this fake owns; their threads see EOF or an error and end.
        unsafe {
            shutdown(self.listener, SHUT_RDWR);
            for fd in self.connections.lock().unwrap().iter() {
                shutdown(*fd, SHUT_RDWR);
            }
        }
        let _ = std::fs::remove_file(path);
    }
}

/// Listens on `path` and serves one connection at a time as an agent of protocol `version`, keeping every frame
/// it receives.
fn fake_agent(path: &str, version: u16) -> FakeAgent {
    let mut address = SockaddrUn { sun_family: AF_UNIX as u16, sun_path: [0; 108] };
    address.sun_path[..path.len()].copy_from_slice(path.as_bytes());
    // SAFETY: plain socket calls on a descriptor this function owns; `address` outlives `bind`.
    let listener = unsafe {
        let fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        assert!(fd >= 0 && bind(fd, &address, std::mem::size_of::<SockaddrUn>() as u32) == 0 && listen(fd, 4) == 0);
        fd
    };
    let frames = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(Mutex::new(Vec::new()));
    let (kept, accepted) = (frames.clone(), connections.clone());
    std::thread::spawn(move || loop {
        // SAFETY: `listener` stays open for the process; null address arguments are allowed.
        let fd = unsafe { accept(listener, std::ptr::null_mut(), std::ptr::null_mut()) };
        if fd < 0 {
            return;
        }
        accepted.lock().unwrap().push(fd);
        let mut buffer = vec![0u8; 1 << 17];
        loop {
            // SAFETY: `buffer` is valid for its length for the call.
            let n = unsafe { recv(fd, buffer.as_mut_ptr().cast(), buffer.len(), 0) };
            if n <= 0 {
                break;
            }
            for frame in wire::decode_record(&buffer[..n as usize], &Limits::default()).expect("frames the agent reads")
            {
                let answer = match &frame {
                    Frame::Hello(_) => Some(Frame::Welcome(Welcome {
                        version,
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
    FakeAgent { frames, listener, connections }
}

/// Histogram bucket deltas in `frames`: (classic observations, native observations), `classic` being the
/// number of classic buckets (+Inf included).
fn observations(frames: &[Frame], classic: u32) -> (u64, u64) {
    let (mut old, mut native) = (0, 0);
    for frame in frames {
        if let Frame::Deltas { deltas, .. } = frame {
            for delta in deltas {
                if let Delta::Histogram { buckets, .. } = delta {
                    for (index, count) in buckets {
                        if *index < classic {
                            old += count;
                        } else {
                            native += count; // the zero bucket and the window
                        }
                    }
                }
            }
        }
    }
    (old, native)
}

/// Removes the test's directory however the test ends (a failed assertion included).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn an_agent_older_than_version_3_gets_classic_buckets_only_and_its_upgrade_the_rest() {
    let directory = TempDir(std::env::temp_dir().join(format!("dma-rust-old-agent-{}", std::process::id())));
    std::fs::create_dir_all(&directory.0).unwrap();
    let path = directory.0.join("ingest.sock");
    let _ = std::fs::remove_file(&path);
    let old = fake_agent(path.to_str().unwrap(), 2);
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
    let frames = old.frames.lock().unwrap().clone();
    let definitions: Vec<_> = frames
        .iter()
        .filter_map(|f| if let Frame::Define { definitions, .. } = f { Some(definitions) } else { None })
        .flatten()
        .collect();
    let histogram = definitions.iter().find(|d| d.kind == Kind::Histogram).expect("the histogram was defined");
    assert_eq!(histogram.native, None, "no native buckets on a version 2 connection");
    let classic = histogram.bounds.len() as u32 + 1;
    assert_eq!(observations(&frames, classic), (4, 0), "every observation reached the classic buckets, none native");

    // The agent is upgraded: the native counts it never got are sent with the next change.
    old.stop(&path);
    let new = fake_agent(path.to_str().unwrap(), 3);
    latency.record(2.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while observations(&new.frames.lock().unwrap(), classic).0 == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(observations(&new.frames.lock().unwrap(), classic), (1, 5), "the new observation, and all five native");
    new.stop(&path);
    handle.shutdown();
}
