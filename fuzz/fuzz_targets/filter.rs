//! The AIP-160 filter subset: never panics; what parses has a field on every term.
#![no_main]

use flotilla::service::filter::{Term, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(terms) = parse(text) {
        for term in terms {
            let field = match term {
                Term::Equals { field, .. } | Term::Present { field } => field,
            };
            assert!(!field.is_empty());
        }
    }
});
