//! The manifest stream splitter and decoder of ApplyManifests: never panics, and every entry
//! points at a document that exists.
#![no_main]

use flotilla::kube::apply::{Entry, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse(text);
    for entry in &parsed.entries {
        let index = match entry {
            Entry::Object(manifest) => manifest.document_index,
            Entry::Rejected(rejected) => rejected.document_index,
        };
        assert!(
            index >= 0 && (index as usize) < parsed.documents,
            "entry for document {index} of {}",
            parsed.documents
        );
    }
});
