//! The protobuf codec of every `retorno.v1` service: tonic-prost's, except
//! that a message that does not decode is the sender's fault.
//!
//! tonic-prost answers undecodable bytes with `INTERNAL`, which a client reads
//! as a server fault and may retry forever. A gateway that receives random
//! bytes, a truncated message or a wrong wire type answers `INVALID_ARGUMENT`
//! instead, naming the message type and prost's description of the problem.
//! The generated servers and clients name this codec (`codec_path` in
//! `build.rs`), so both APIs use it on every method, streams included. A
//! client that cannot decode an answer therefore also reads
//! `INVALID_ARGUMENT` naming the answer's type: the message says whose bytes
//! did not decode, and tonic-prost-build has one codec for both sides.

use std::marker::PhantomData;

use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder};

/// tonic-prost's codec with [`UndecodableIsInvalid`] as its decoder.
#[derive(Debug, Clone)]
pub struct RetornoCodec<T, U> {
    prost: ProstCodec<T, U>,
}

impl<T, U> Default for RetornoCodec<T, U> {
    fn default() -> Self {
        RetornoCodec {
            prost: ProstCodec::default(),
        }
    }
}

impl<T, U> Codec for RetornoCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = UndecodableIsInvalid<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.prost.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        UndecodableIsInvalid {
            prost: self.prost.decoder(),
            _message: PhantomData,
        }
    }
}

/// tonic-prost's decoder, whose decode errors become `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct UndecodableIsInvalid<U> {
    prost: ProstDecoder<U>,
    _message: PhantomData<U>,
}

impl<U: prost::Message + Default> Decoder for UndecodableIsInvalid<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.prost.decode(buf).map_err(undecodable::<U>)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.prost.buffer_settings()
    }
}

/// The status for bytes that do not decode as `U`; prost's error names the field.
fn undecodable<U>(error: Status) -> Status {
    let name = std::any::type_name::<U>().rsplit("::").next().unwrap_or("");
    Status::invalid_argument(format!(
        "the message does not decode as retorno.v1.{name}: {}",
        error.message()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undecodable_message_is_invalid_and_named() {
        let status = undecodable::<crate::v1::SubmitRequest>(Status::internal(
            "failed to decode Protobuf message: invalid wire type",
        ));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "the message does not decode as retorno.v1.SubmitRequest: failed to decode Protobuf message: invalid wire type"
        );
    }
}
