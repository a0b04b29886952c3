//! `retorno-gateway`: runs one country's gateway, or a whole local region.

fn main() -> std::process::ExitCode {
    retorno_gateway::cli::main()
}
