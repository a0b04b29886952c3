//! `retorno-certs-dev`: writes a development PKI for a retorno region.
//!
//! Only parses arguments and prints what happened; all the work is in the
//! library so the gateway's `dev` command can do the same.

use std::path::PathBuf;

use clap::Parser;
use retorno_certs_dev::{Options, generate_with_report};

/// Writes a regional root CA, gateway certificates, agency CAs and agency
/// client certificates for the given countries. Existing files are kept.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Folder to write the PKI into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Comma-separated ISO 3166-1 alpha-2 country codes, e.g. MX,GT,HN,US.
    #[arg(long, value_name = "CC,...", value_delimiter = ',', required = true)]
    countries: Vec<String>,
    /// Regenerate and overwrite every file, including the CAs.
    #[arg(long)]
    force: bool,
}

/// Runs the generator and prints one line per written file plus a summary.
fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let report = generate_with_report(&Options {
        out: args.out,
        countries: args.countries,
        force: args.force,
    })?;
    for path in &report.written {
        println!("wrote {}", path.display());
    }
    println!(
        "wrote {} files, kept {} in {}",
        report.written.len(),
        report.kept.len(),
        report.layout.dir().display()
    );
    Ok(())
}
