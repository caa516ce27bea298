//! The rancher adapter's `parse_error` on any status, headers and body.
#![no_main]

use flotilla::adapters::cluster::rancher::error::parse_error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = flotilla_fuzz::raw_response(data);
    if let Some(err) = parse_error(&raw, "Fuzz") {
        // Whatever the vendor says, the error can be shown.
        let _ = err.to_string();
    }
});
