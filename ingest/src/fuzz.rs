//! Inputs for the fuzz tests of the parsers (proptest): arbitrary bytes, and valid payloads
//! mutated, byte by byte or value by value. Each parser's own tests module runs them through
//! its decoding path with a bounded number of cases ([`CASES`]), so CI takes seconds.

use proptest::prelude::*;
use serde_json::Value;

/// Cases per fuzz test (unless `VIGIE_FUZZ_CASES` says otherwise).
pub const CASES: u32 = 256;

/// The proptest configuration of the fuzz tests: [`CASES`] cases (or `VIGIE_FUZZ_CASES`), no
/// files of regressions (the failing input is printed instead).
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: vigie_record::fixtures::fuzz_cases(CASES),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One edit of a byte string: at a position (taken modulo its length), with a byte.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Cut(usize),
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len().max(1);
        match *edit {
            Edit::Flip(at, b) if !bytes.is_empty() => bytes[at % len] ^= b,
            Edit::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
            Edit::Remove(at) if !bytes.is_empty() => {
                bytes.remove(at % len);
            }
            Edit::Cut(at) => bytes.truncate(at % (bytes.len() + 1)),
            _ => {}
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Flip(a, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Insert(a, b)),
            any::<usize>().prop_map(Edit::Remove),
            any::<usize>().prop_map(Edit::Cut),
        ],
        1..6,
    )
}

/// Arbitrary bytes, or one of `valid` with a few bytes flipped, inserted, removed or cut.
pub fn bytes_like(valid: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let n = valid.len();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (0..n, edits()).prop_map(move |(i, e)| apply(valid[i].clone().into_bytes(), &e)),
    ]
}

/// A JSON value of any type, with the extremes parsers trip on: huge and negative numbers,
/// non-ASCII and empty strings, empty containers.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(-1)),
        Just(Value::from(1e308)),
        Just(Value::from(-1e308)),
        Just(Value::from(0.5)),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String(String::new())),
        Just(Value::Array(Vec::new())),
        Just(Value::Object(serde_json::Map::new())),
    ]
}

/// The JSON pointers of every node of `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                pointers(v, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// One of `valid` (JSON texts) with up to four of its values (anywhere, containers included)
/// replaced by values of other types or extreme ones. (Byte-level mutations: [`bytes_like`].)
pub fn json_like(valid: Vec<String>) -> impl Strategy<Value = String> {
    let n = valid.len();
    (
        0..n,
        prop::collection::vec((any::<usize>(), odd_value()), 1..5),
    )
        .prop_map(move |(i, swaps)| {
            let mut value: Value = serde_json::from_str(&valid[i]).unwrap_or(Value::Null);
            for (at, new) in swaps {
                let mut all = Vec::new();
                pointers(&value, String::new(), &mut all);
                let pointer = &all[at % all.len()];
                if let Some(slot) = value.pointer_mut(pointer) {
                    *slot = new;
                }
            }
            value.to_string()
        })
}
