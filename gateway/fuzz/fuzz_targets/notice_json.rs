//! The `retorno` program's JSON input: an advance notice as an agency writes
//! it, and a whole submit request (which covers every payload kind's
//! proto3-JSON parser). Parsing may refuse, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use retorno_proto::v1::SubmitRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = retorno_client::notice::parse_notice(text);
        let _ = retorno_client::notice::parse_message::<SubmitRequest>(text);
    }
});
