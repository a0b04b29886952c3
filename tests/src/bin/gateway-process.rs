//! The `retorno-gateway` program, built inside the tests crate so that tests
//! can run a gateway as a separate process and kill it with SIGKILL.

#[global_allocator]
static ALLOCATOR: retorno_gateway::Allocator = retorno_gateway::Allocator;

fn main() -> std::process::ExitCode {
    retorno_gateway::cli::main()
}
