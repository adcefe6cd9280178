//! A PatchOp JSON body (seeded with real IdP requests) parsed and applied to a stored User and
//! Group: no panic, atomic on error, canonical on success.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) {
        scimgate_proto_fuzz::check_patch_body(&body);
    }
});
