//! Hostile tasks, one per thing a sandbox must contain: an infinite loop, a memory bomb, deep recursion, a trap, a
//! panic, a huge result, reading `/etc/passwd`, reading the environment, opening a socket, unbounded nested task calls;
//! and a flow that calls them and still completes. Run: `cachehost run build/examples/hostile.wasm --flow survive`
//! (with build/examples/cachehost.toml limits; see tests/tests/all/sandbox.rs).

wit_bindgen::generate!({ world: "example:hostile/hostile", path: ["../../../wit", "wit"] });

use std::hint::black_box;

use cachehost_guest::TaskOptions;
use example::hostile::tasks;

struct Component;

impl exports::example::hostile::tasks::Guest for Component {
    fn spin() -> Result<u64, String> {
        let mut n = 0u64;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }

    fn hog_memory() -> Result<u64, String> {
        let mut blocks = Vec::new();
        loop {
            blocks.push(black_box(vec![1u8; 4 << 20]));
            if blocks.len() > 1 << 20 {
                return Ok(blocks.len() as u64);
            }
        }
    }

    fn recurse(depth: u64) -> Result<u64, String> {
        Ok(deep(black_box(depth)))
    }

    fn trap() -> Result<u64, String> {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        unreachable!()
    }

    fn panics() -> Result<u64, String> {
        panic!("the hostile task panicked on purpose");
    }

    fn huge(size: u64) -> Result<Vec<u8>, String> {
        Ok(vec![7u8; size as usize])
    }

    fn huge_text(size: u64) -> Result<String, String> {
        Ok("x".repeat(size as usize))
    }

    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))
    }

    fn write_file(path: String, text: String) -> Result<(), String> {
        std::fs::write(&path, text).map_err(|e| format!("cannot write {path}: {e}"))
    }

    fn read_env() -> Vec<(String, String)> {
        std::env::vars().collect()
    }

    fn list_dir(path: String) -> Result<Vec<String>, String> {
        let entries = std::fs::read_dir(&path).map_err(|e| format!("cannot list {path}: {e}"))?;
        let mut names: Vec<String> =
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        Ok(names)
    }

    fn now() -> u64 {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        since.as_nanos() as u64
    }

    fn connect(address: String) -> Result<String, String> {
        match std::net::TcpStream::connect(&address) {
            Ok(stream) => Ok(format!("connected to {:?}", stream.peer_addr())),
            Err(e) => Err(format!("cannot connect to {address}: {e}")),
        }
    }

    fn nest(level: u64) -> Result<u64, String> {
        // Uses about 256 KiB of stack at every level before going one deeper.
        black_box(burn_stack(64));
        tasks::nest(level + 1).map(|deepest| deepest.max(level))
    }

    fn flaky(marker: String) -> u64 {
        let earlier = std::fs::read_to_string(&marker).map(|text| text.len() as u64).unwrap_or(0);
        std::fs::write(&marker, "x".repeat(earlier as usize + 1)).expect("the marker's folder is granted read-write");
        if earlier == 0 {
            panic!("transient failure: first run for {marker}");
        }
        earlier
    }

    fn add_one(x: i64) -> i64 {
        x + 1
    }

    fn pad(x: i64, salt: u32, size: u32) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(size as usize);
        bytes.extend_from_slice(&x.to_le_bytes());
        bytes.extend_from_slice(&salt.to_le_bytes());
        while bytes.len() < size as usize {
            bytes.push(pad_byte(x, salt, bytes.len()));
        }
        bytes.truncate(size as usize);
        bytes
    }
}

fn pad_byte(x: i64, salt: u32, index: usize) -> u8 {
    (x as u32).wrapping_mul(31).wrapping_add(salt.wrapping_mul(17)).wrapping_add(index as u32) as u8
}

/// Whether `bytes` are what pad(x, some salt, size) returns.
fn pad_checks_out(bytes: &[u8], x: i64, size: u32) -> bool {
    if bytes.len() != size as usize || bytes.len() < 12 {
        return false;
    }
    let stored_x = i64::from_le_bytes(bytes[0..8].try_into().unwrap());
    let salt = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    stored_x == x && bytes.iter().enumerate().skip(12).all(|(i, b)| *b == pad_byte(x, salt, i))
}

fn deep(depth: u64) -> u64 {
    let frame = black_box([depth; 16]);
    if depth == 0 {
        return frame[0];
    }
    deep(depth - 1) + black_box(frame)[1]
}

fn burn_stack(frames: u32) -> u64 {
    let frame = black_box([frames as u8; 4096]);
    if frames == 0 {
        return frame[0] as u64;
    }
    burn_stack(frames - 1) + black_box(frame)[4095] as u64
}

/// A task of the flow's table, by name, with its result as text.
type Call = (&'static str, fn() -> Result<String, String>);

impl exports::example::hostile::flow::Guest for Component {
    fn survive() -> Vec<String> {
        let mut lines = Vec::new();
        let mut report = |task: &str, outcome: Result<String, String>| {
            lines.push(match outcome {
                Ok(value) => format!("{task}: ok {value}"),
                Err(message) => format!("{task}: err {message}"),
            });
        };
        let calls: [Call; 8] = [
            ("spin", || tasks::spin().map(|n| n.to_string())),
            ("hog-memory", || tasks::hog_memory().map(|n| n.to_string())),
            ("recurse", || tasks::recurse(u64::MAX).map(|n| n.to_string())),
            ("trap", || tasks::trap().map(|n| n.to_string())),
            ("panics", || tasks::panics().map(|n| n.to_string())),
            ("huge", || tasks::huge(8 << 20).map(|b| format!("{} bytes", b.len()))),
            ("read-file", || tasks::read_file("/etc/passwd")),
            ("nest", || tasks::nest(0).map(|n| n.to_string())),
        ];
        for (i, (task, call)) in calls.iter().enumerate() {
            report(task, call());
            report("add-one", Ok(tasks::add_one(i as i64).to_string()));
        }
        lines
    }

    fn churn(start: i64, count: u32, salt: u32, size: u32) -> u32 {
        (start..start + count as i64).filter(|&x| !pad_checks_out(&tasks::pad(x, salt, size), x, size)).count() as u32
    }
}

cachehost_guest::export_task_options!(
    Component,
    [
        TaskOptions::new("add-one").cache_policy("INPUTS"),
        TaskOptions::new("pad").cache_policy("INPUTS - 'salt'"),
        TaskOptions::new("flaky").cache_policy("NONE"),
    ]
);

export!(Component);
