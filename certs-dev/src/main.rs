//! `retorno-certs-dev`: writes a development PKI for a retorno region.
//!
//! Only parses arguments and prints what happened; all the work is in the
//! library so the gateway's `dev` command can do the same.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use retorno_certs_dev::{
    Holder, Layout, Lifetime, Options, ROLES, generate_with_report, renew, revoke,
};

/// Writes a regional root CA, gateway certificates, agency CAs and agency
/// client certificates for the given countries. Existing files are kept.
///
/// `renew` and `revoke` replace or revoke one certificate of an existing PKI.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    generate: GenerateArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the PKI (the same as giving --out and --countries without a command).
    Generate(GenerateArgs),
    /// Replace one certificate: a new key and certificate under the existing CA.
    Renew {
        #[command(flatten)]
        holder: HolderArgs,
        /// How many days the new certificate is valid.
        #[arg(long, default_value_t = Lifetime::default().valid_days)]
        valid_days: u32,
        /// How many days ago its validity starts (with --valid-days smaller,
        /// this makes an already expired certificate, for tests).
        #[arg(long, default_value_t = 0)]
        not_before_days_ago: u32,
    },
    /// Revoke one certificate: add it to its CA's revocation list
    /// (DIR/root/crl.pem for gateways, DIR/CC/agency-crl.pem for agencies).
    Revoke(HolderArgs),
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Folder to write the PKI into.
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,
    /// Comma-separated ISO 3166-1 alpha-2 country codes, e.g. MX,GT,HN,US.
    #[arg(long, value_name = "CC,...", value_delimiter = ',', required = true)]
    countries: Vec<String>,
    /// Regenerate and overwrite every file, including the CAs.
    #[arg(long)]
    force: bool,
}

/// Whose certificate: `--gateway CC`, or `--country CC --role ROLE`.
#[derive(Debug, Args)]
struct HolderArgs {
    /// The PKI folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// A country's gateway certificate.
    #[arg(long, value_name = "CC", conflicts_with_all = ["country", "role"], required_unless_present = "country")]
    gateway: Option<String>,
    /// The country of an agency certificate (with --role).
    #[arg(long, value_name = "CC", requires = "role")]
    country: Option<String>,
    /// The role of an agency certificate (with --country).
    #[arg(long, value_parser = ROLES, requires = "country")]
    role: Option<String>,
}

impl HolderArgs {
    fn holder(&self) -> anyhow::Result<Holder> {
        match (&self.gateway, &self.country, &self.role) {
            (Some(country), None, None) => Ok(Holder::Gateway {
                country: country.clone(),
            }),
            (None, Some(country), Some(role)) => Ok(Holder::Agency {
                country: country.clone(),
                role: role.clone(),
            }),
            _ => anyhow::bail!("give --gateway CC, or --country CC --role ROLE"),
        }
    }
}

/// Runs the command and prints one line per written file plus a summary.
fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => generate(cli.generate),
        Some(Command::Generate(args)) => generate(args),
        Some(Command::Renew {
            holder,
            valid_days,
            not_before_days_ago,
        }) => {
            let lifetime = Lifetime {
                not_before_days_ago,
                valid_days,
            };
            for path in renew(&Layout::new(&holder.out), &holder.holder()?, lifetime)? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Some(Command::Revoke(holder)) => {
            let crl = revoke(&Layout::new(&holder.out), &holder.holder()?)?;
            println!(
                "wrote {}: gateways that list it in tls.crls refuse the certificate from their next reload",
                crl.display()
            );
            Ok(())
        }
    }
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let out = args
        .out
        .ok_or_else(|| anyhow::anyhow!("--out DIR is required"))?;
    let report = generate_with_report(&Options {
        out,
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
