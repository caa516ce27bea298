//! Page token decoding (database lists and Kubernetes-backed lists): any token is either
//! refused or gives a page within bounds; a token the server issued is always taken back.
#![no_main]

use flotilla::service::paging::{KubePage, MAX_PAGE_SIZE, Page};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (size, token) = match data {
        [a, b, c, d, rest @ ..] => (i32::from_be_bytes([*a, *b, *c, *d]), rest),
        _ => (0, data),
    };
    let token = String::from_utf8_lossy(token);
    if let Ok(page) = Page::parse(size, &token, "fuzz/query") {
        assert!(page.offset >= 0, "negative offset from {token:?}");
        assert!((1..=MAX_PAGE_SIZE).contains(&page.size));
        // The server's own next token is accepted again.
        let next = page.next_token(1, i64::MAX);
        if !next.is_empty() {
            let again = Page::parse(size, &next, "fuzz/query").expect("own token refused");
            assert_eq!(again.offset, page.offset + 1);
        }
    }
    let _ = KubePage::parse(size, &token, "fuzz/query");
});
