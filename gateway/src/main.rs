//! `retorno-gateway`: runs one country's gateway, or a whole local region.

#[global_allocator]
static ALLOCATOR: retorno_gateway::Allocator = retorno_gateway::Allocator;

fn main() -> std::process::ExitCode {
    retorno_gateway::cli::main()
}
