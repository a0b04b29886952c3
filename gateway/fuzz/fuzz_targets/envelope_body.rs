//! A peer gateway's envelope body: protobuf bytes as delivered on the Peer API,
//! decoded and validated the way `peer_api` does before storing anything.
//! Neither step may panic, whatever the bytes and whatever the payload kind.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use retorno_proto::v1::EnvelopeBody;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = EnvelopeBody::decode(data) {
        let _ = retorno_gateway::validate::envelope_body(&body);
    }
});
