//! `retorno-gateway`: runs one country's gateway, or a whole local region,
//! and the operator's commands. Argument parsing, logging set-up and the
//! program's errors (`anyhow`) live here, so the library stays free of them.
//!
//! # Layout
//! - `main/cli.rs`: the commands and what each calls in the library.
//! - `main/dev.rs`: `retorno-gateway dev`, a whole local region in one process.
//! - `main/ops.rs`: `retorno-gateway ops`, the operator's commands over the Operator API,
//!   and `retorno-gateway migrate` (sled onto PostgreSQL).
//!
//! The tests crate builds this same program as `gateway-process` (it includes
//! these files), so that tests can run a gateway as a process and kill it.

#[global_allocator]
static ALLOCATOR: retorno_gateway::Allocator = retorno_gateway::Allocator;

#[path = "main/cli.rs"]
mod cli;
#[path = "main/dev.rs"]
mod dev;
#[path = "main/ops.rs"]
mod ops;

fn main() -> std::process::ExitCode {
    cli::main()
}
