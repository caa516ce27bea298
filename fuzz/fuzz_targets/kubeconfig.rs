//! The kubeconfig parser and the access it describes (every context), with file references
//! forbidden as for an uploaded kubeconfig.
#![no_main]

use flotilla::kube::kubeconfig::{FileReferences, access_for_context, context_names, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = parse(data) else {
        return;
    };
    let _ = access_for_context(&config, None, FileReferences::Forbidden);
    for name in context_names(&config) {
        let _ = access_for_context(&config, Some(&name), FileReferences::Forbidden);
    }
});
