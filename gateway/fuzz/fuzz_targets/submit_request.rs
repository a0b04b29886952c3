//! An agency's submit: protobuf bytes as received on the Agency API, decoded
//! and validated the way `agency_api` does (payload kind, then its content).

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use retorno_proto::v1::SubmitRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = SubmitRequest::decode(data) {
        let _ = retorno_gateway::validate::case_id(&request.case_id);
        if let Ok(payload) = retorno_gateway::validate::submitted_payload(request.payload.as_ref())
        {
            let _ = retorno_gateway::validate::payload_content(&payload);
        }
    }
});
