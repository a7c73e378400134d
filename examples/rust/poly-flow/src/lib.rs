//! A flow calling the example:poly tasks of four components at once: Python, JavaScript, C and Rust. Run: `cachehost
//! run build/examples/poly-flow.wasm --tasks build/examples/poly-py.wasm --tasks build/examples/poly-js.wasm --tasks
//! build/examples/poly-c.wasm --tasks build/examples/poly-rust.wasm --param 'name="Ada"' --param 'words=["tea","café"]'
//! --param 'items=[{"name":"tea","quantity":2,"price-cents":350}]'`.

wit_bindgen::generate!({
    world: "example:poly/poly-flow",
    path: "../../polyglot/wit",
});

use example::poly::types::{Item, Summary};
use example::poly::{c_tasks, js_tasks, py_tasks, rust_tasks};
use exports::example::poly::flow::{Guest, LargeBytesResult, PolyResult};

/// One language's tasks, so the conformance sequence is written once.
struct Tasks {
    greet: fn(&str, Option<&str>) -> String,
    word_lengths: fn(&[String]) -> Vec<u32>,
    summarize: fn(&[Item]) -> Summary,
    parse_quantity: fn(&str) -> Result<u32, String>,
    shout: fn(&str) -> String,
    ledger: fn(&str) -> String,
    reverse_bytes: fn(&[u8]) -> Vec<u8>,
    reverse_floats: fn(&[f64]) -> Vec<f64>,
}

macro_rules! tasks {
    ($module:ident) => {
        Tasks {
            greet: $module::greet,
            word_lengths: $module::word_lengths,
            summarize: $module::summarize,
            parse_quantity: $module::parse_quantity,
            shout: $module::shout,
            ledger: $module::ledger,
            reverse_bytes: $module::reverse_bytes,
            reverse_floats: $module::reverse_floats,
        }
    };
}

fn tasks(lang: &str) -> Option<Tasks> {
    Some(match lang {
        "rust" => tasks!(rust_tasks),
        "py" => tasks!(py_tasks),
        "js" => tasks!(js_tasks),
        "c" => tasks!(c_tasks),
        _ => return None,
    })
}

struct Component;

impl Guest for Component {
    fn poly(name: String, words: Vec<String>, items: Vec<Item>) -> PolyResult {
        let order = ["py", "js", "c", "rust"].map(|lang| tasks(lang).expect("a known language"));
        let greetings = order.iter().map(|t| (t.greet)(&name, None)).collect();
        let lengths = order.iter().map(|t| (t.word_lengths)(&words)).collect();
        let summaries = vec![py_tasks::summarize(&items), rust_tasks::summarize(&items)];
        if let Some(state) = cachehost_guest::runtime::last_state() {
            cachehost_guest::info(format!("summarize in Rust after Python: {}", state.name));
        }
        PolyResult { greetings, lengths, summaries }
    }

    fn conformance(lang: String) -> Result<Vec<String>, String> {
        let t = tasks(&lang).ok_or_else(|| format!("unknown language {lang:?}: use rust, py, js or c"))?;
        let items = vec![
            Item { name: "tea".into(), quantity: 2, price_cents: 350 },
            Item { name: "cake".into(), quantity: 1, price_cents: 420 },
            Item { name: "scone".into(), quantity: 3, price_cents: 420 },
        ];
        let words = ["a".to_string(), "bb".into(), "café".into(), "".into()];
        let mut out = Vec::new();
        let mut note = |text: String| {
            let state = cachehost_guest::runtime::last_state().map_or("none".to_string(), |s| s.name);
            out.push(format!("{state}: {text}"));
        };
        note((t.greet)("Ada", None));
        note((t.greet)("Ada", None));
        note((t.greet)("Ada", Some("?")));
        note(format!("{:?}", (t.word_lengths)(&words)));
        note(format!("{:?}", (t.word_lengths)(&words)));
        note(format!("{:?}", (t.summarize)(&items)));
        note(format!("{:?}", (t.summarize)(&[])));
        note(format!("{:?}", (t.summarize)(&items)));
        for text in ["12", "12", "x1", "x1", "4294967295", "4294967296", "+1", ""] {
            note(format!("{:?}", (t.parse_quantity)(text)));
        }
        note((t.shout)("ada"));
        note((t.shout)("ADA"));
        note((t.shout)("Ada Lovelace"));
        note((t.ledger)("tea"));
        note((t.ledger)("tea"));
        note((t.ledger)("caf\u{e9} \"x\"\\\n"));
        Ok(out)
    }

    fn large_bytes(lang: String, size: u32, seed: u64) -> Result<LargeBytesResult, String> {
        let t = tasks(&lang).ok_or_else(|| format!("unknown language {lang:?}: use rust, py, js or c"))?;
        let data = pseudo_random_bytes(size as usize, seed);
        let mut states = Vec::new();
        for call in ["first", "second"] {
            let reversed = (t.reverse_bytes)(&data);
            states.push(cachehost_guest::runtime::last_state().map_or("none".to_string(), |s| s.name));
            check_reversed(&data, &reversed).map_err(|e| format!("{lang} reverse-bytes, {call} call: {e}"))?;
        }
        Ok(LargeBytesResult { size, checksum: fnv1a(&data), states })
    }

    fn large_floats(lang: String, count: u32, seed: u64) -> Result<LargeBytesResult, String> {
        let t = tasks(&lang).ok_or_else(|| format!("unknown language {lang:?}: use rust, py, js or c"))?;
        let bytes = pseudo_random_bytes(count as usize * 8, seed);
        // The top 53 bits of each word, scaled: a float in [0, 1e6), never NaN or -0.0.
        let xs: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|w| (u64::from_le_bytes(w.try_into().expect("8 bytes")) >> 11) as f64 / (1u64 << 53) as f64 * 1e6)
            .collect();
        let mut states = Vec::new();
        for call in ["first", "second"] {
            let reversed = (t.reverse_floats)(&xs);
            states.push(cachehost_guest::runtime::last_state().map_or("none".to_string(), |s| s.name));
            let sent: Vec<u64> = xs.iter().rev().map(|x| x.to_bits()).collect();
            let got: Vec<u64> = reversed.iter().map(|x| x.to_bits()).collect();
            if got.len() != sent.len() {
                return Err(format!("{lang} reverse-floats, {call} call: {} values came back for {count}", got.len()));
            }
            if let Some(i) = got.iter().zip(&sent).position(|(g, s)| g != s) {
                return Err(format!(
                    "{lang} reverse-floats, {call} call: value {i} is {} instead of {}",
                    reversed[i],
                    f64::from_bits(sent[i])
                ));
            }
        }
        let le: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        Ok(LargeBytesResult { size: count, checksum: fnv1a(&le), states })
    }
}

/// `size` bytes of splitmix64 from `seed`: each step's output as eight little-endian bytes.
fn pseudo_random_bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut data = Vec::with_capacity(size + 8);
    while data.len() < size {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        data.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    data.truncate(size);
    data
}

/// Whether `reversed` is `data` backwards, else the first offset (into `reversed`) that is not.
fn check_reversed(data: &[u8], reversed: &[u8]) -> Result<(), String> {
    if reversed.len() != data.len() {
        return Err(format!("{} bytes came back for {} sent", reversed.len(), data.len()));
    }
    match reversed.iter().zip(data.iter().rev()).position(|(got, want)| got != want) {
        None => Ok(()),
        Some(offset) => Err(format!(
            "byte {offset} of the result is {:#04x}, not {:#04x}",
            reversed[offset],
            data[data.len() - 1 - offset]
        )),
    }
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

export!(Component);
