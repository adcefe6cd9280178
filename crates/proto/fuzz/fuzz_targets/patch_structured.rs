//! PATCH requests built by `arbitrary` from schema attribute names, URNs, value filters and the
//! value shapes IdPs send; the same properties as the `patch` target.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scimgate_proto_fuzz::structured::Request;

fuzz_target!(|request: Request| {
    scimgate_proto_fuzz::check_patch_body(&request.to_json());
});
