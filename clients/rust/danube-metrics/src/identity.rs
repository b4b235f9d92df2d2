//! Who this process is, for HELLO, and where the agent's socket is by default: the same rules as the Swift
//! emitter (`DefaultPaths.swift`, `ProcessIdentity.swift`), so both find the same agent.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{platform, process};

/// Environment variable that overrides the ingest socket path for agent and emitters alike.
pub const SOCKET_ENV: &str = "DANUBE_METRICS_SOCKET";
/// Environment variable that sets the default flush interval, in milliseconds.
pub const FLUSH_INTERVAL_ENV: &str = "DANUBE_METRICS_FLUSH_INTERVAL_MS";

/// The installed service's socket (systemd's `ListenSequentialPacket=`).
pub const SYSTEM_SOCKET: &str = "/run/danube-metrics-agent/ingest.sock";

/// `$DANUBE_METRICS_SOCKET`; else the installed service's socket whenever it exists (whoever runs the emitter);
/// else `/run/danube-metrics-agent/ingest.sock` for root; else `$XDG_RUNTIME_DIR/danube-metrics-agent/ingest.sock`;
/// else `/tmp/danube-metrics-agent-<uid>/ingest.sock`. The same rules as the Swift emitter.
pub fn default_socket() -> PathBuf {
    if let Some(explicit) = std::env::var_os(SOCKET_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(explicit);
    }
    if std::path::Path::new(SYSTEM_SOCKET).exists() {
        return PathBuf::from(SYSTEM_SOCKET);
    }
    let Some(uid) = platform::uid() else {
        // No user ids (the portable layer): one path per machine, in its temporary directory.
        return std::env::temp_dir().join("danube-metrics-agent/ingest.sock");
    };
    if uid == 0 {
        return PathBuf::from(SYSTEM_SOCKET);
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(runtime).join("danube-metrics-agent/ingest.sock");
    }
    PathBuf::from(format!("/tmp/danube-metrics-agent-{uid}/ingest.sock"))
}

/// The process name (`/proc/self/comm`), the default source name.
pub fn process_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "rust-emitter".to_owned())
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Start time of this process in Unix milliseconds (boot time + start ticks from /proc); now if unreadable.
pub fn process_start_millis() -> u64 {
    let read = || -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // starttime is field 22 (index 19 after the state, field 3).
        let ticks: u64 = process::stat_fields(&stat)?.get(19)?.parse().ok()?;
        Some(process::boot_time_seconds()? * 1000 + ticks * 1000 / process::clock_ticks())
    };
    read().unwrap_or_else(now_millis)
}

/// 64 random bits: std's per-process random hash keys, mixed with the time and pid.
pub fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(now_millis());
    hasher.write_u32(std::process::id());
    hasher.write_u64(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::from(d.subsec_nanos())));
    hasher.finish()
}
