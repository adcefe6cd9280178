//! `proto::filter::parse` on arbitrary text: no panic, bounded nesting, print/parse round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        scimgate_proto_fuzz::check_filter(input);
    }
});
