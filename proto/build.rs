//! Compiles `retorno/v1/*.proto` with the pure-Rust `protox` compiler, so that
//! no machine needs `protoc`, then generates prost messages, tonic services and
//! serde impls (proto3 JSON mapping) for them.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &[
    "retorno/v1/common.proto",
    "retorno/v1/notice.proto",
    "retorno/v1/case.proto",
    "retorno/v1/envelope.proto",
    "retorno/v1/peer.proto",
    "retorno/v1/agency.proto",
    "retorno/v1/operator.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_bytes = descriptors.encode_to_vec();
    fs::write(out_dir.join("retorno_descriptor.bin"), &descriptor_bytes)?;

    tonic_prost_build::configure()
        .compile_well_known_types(true)
        // Undecodable bytes are the sender's fault: see `src/codec.rs`.
        .codec_path("crate::codec::RetornoCodec")
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .build(&[".retorno"])?;
    Ok(())
}
