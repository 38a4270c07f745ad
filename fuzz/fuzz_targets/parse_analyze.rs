//! Any bytes through the line reader, the parser and the analyzer, with and
//! without a fixed chunk size: nothing may panic, and the report serializes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xskdbg_analyzer::parse::parse_line;
use xskdbg_analyzer::{analyze_reader, Options};

fuzz_target!(|data: &[u8]| {
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let _ = parse_line(i as u64 + 1, line);
    }
    if let Ok(r) = analyze_reader(data, &Options::default()) {
        let _ = r.to_json();
    }
    let opts = Options { chunk_size: Some(0x1000), history: Some(0x1000), ..Options::default() };
    let _ = analyze_reader(data, &opts);
});
