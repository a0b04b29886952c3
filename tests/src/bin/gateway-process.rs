//! The `retorno-gateway` program, built inside the tests crate from the
//! gateway's own program files, so that tests can run a gateway as a
//! separate process and kill it with SIGKILL.

#[global_allocator]
static ALLOCATOR: retorno_gateway::Allocator = retorno_gateway::Allocator;

#[path = "../../../gateway/src/main/cli.rs"]
mod cli;
#[path = "../../../gateway/src/main/dev.rs"]
mod dev;
#[path = "../../../gateway/src/main/ops.rs"]
mod ops;

fn main() -> std::process::ExitCode {
    cli::main()
}
