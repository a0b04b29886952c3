//! The signed country report: tables only, signed by the gateway's key.
//!
//! A report is one JSON file. Its `body` holds the country, the period, the
//! disclosure rule and the published tables; its `signature` is the
//! gateway's seal over the body's compact JSON (the same key and the same
//! trust as the envelope seals of [`crate::seal`], under its own domain so
//! that a report's signature cannot pass for an envelope's), with the
//! gateway's certificate. [`verify`] needs nothing but the regional root: the
//! certificate must chain to it and name the gateway of the report's country.
//! The file is written in one canonical form and must be read back in that
//! form, so that any byte changed fails, whitespace included.

use std::path::{Path, PathBuf};

use retorno_proto::v1::Seal;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};

use super::disclosure::{Published, Rule};
use crate::{
    country::Country,
    identity::Identity,
    seal::{self, SealError, Sealer, Verifier},
};

/// What a report seal signs, before the root.
pub const STATISTICS: &[u8] = b"retorno.v1 statistics report\0";

/// What the body's `format` says, so that another JSON file is not taken for a report.
pub const FORMAT: &str = "retorno.v1 statistics report";

/// What a country publishes for a period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// Always [`FORMAT`].
    pub format: String,
    /// The reporting country.
    pub country: String,
    /// The first month, `YYYY-MM`.
    pub from: String,
    /// The last month.
    pub to: String,
    /// When the report was made (RFC 3339); the certificate must be valid then.
    pub generated_at: String,
    /// The disclosure rule its tables were published under.
    pub rule: Rule,
    /// The tables.
    pub tables: Vec<Published>,
}

/// The gateway's signature over a body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The signing gateway's certificate, DER in lowercase hex.
    pub certificate: String,
    /// The ECDSA P-256 signature, lowercase hex.
    pub signature: String,
}

/// A signed country report, as its file holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// What is signed.
    pub body: Body,
    /// The signature.
    pub signature: Signature,
}

/// Why a report does not verify, or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a report.
    #[error("not a retorno statistics report: {0}")]
    NotAReport(String),
    /// The file is a report, but not in the form it was written in.
    #[error(
        "the file differs from the form a report is written in: it was altered after it was signed"
    )]
    NotCanonical,
    /// The signature or its certificate does not hold.
    #[error("the signature does not hold: {0}")]
    Seal(#[from] SealError),
    /// The certificate names another country's gateway than the report's.
    #[error("the report says {claimed}, but it is signed by {signer}'s gateway")]
    WrongCountry {
        /// The country the body names.
        claimed: String,
        /// The country the certificate names.
        signer: Country,
    },
}

fn unhex(text: &str) -> Result<Vec<u8>, ReportError> {
    let bad = || ReportError::NotAReport("signature fields must be lowercase hex".into());
    if !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

/// The bytes a signature covers: the body's compact JSON.
fn signed_bytes(body: &Body) -> Result<Vec<u8>, ReportError> {
    serde_json::to_vec(body).map_err(|e| ReportError::NotAReport(e.to_string()))
}

/// Signs `body` with the gateway's key.
pub fn sign(body: Body, sealer: &Sealer) -> Result<Report, ReportError> {
    let bytes = signed_bytes(&body)?;
    let seal = sealer
        .seal(STATISTICS, &[bytes.as_slice()])?
        .pop()
        .ok_or(SealError::Signing("no seal was made".into()))?;
    Ok(Report {
        body,
        signature: Signature {
            certificate: seal::hex(&sealer.certificate),
            signature: seal::hex(&seal.signature),
        },
    })
}

/// The report's file content: the one form [`read`] accepts.
pub fn to_file_bytes(report: &Report) -> Result<Vec<u8>, ReportError> {
    let mut bytes =
        serde_json::to_vec_pretty(report).map_err(|e| ReportError::NotAReport(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Parses a report's bytes, refusing any other form than the written one.
pub fn from_file_bytes(bytes: &[u8]) -> Result<Report, ReportError> {
    let report: Report =
        serde_json::from_slice(bytes).map_err(|e| ReportError::NotAReport(e.to_string()))?;
    if report.body.format != FORMAT {
        return Err(ReportError::NotAReport(format!(
            "format is {:?}, not {FORMAT:?}",
            report.body.format
        )));
    }
    if to_file_bytes(&report)? != bytes {
        return Err(ReportError::NotCanonical);
    }
    Ok(report)
}

/// Reads a report file (without verifying it).
pub fn read(file: &Path) -> Result<Report, ReportError> {
    let bytes = std::fs::read(file).map_err(|source| ReportError::Io {
        file: file.to_owned(),
        source,
    })?;
    from_file_bytes(&bytes)
}

/// Checks the signature with nothing but `roots`: the certificate chains to
/// one at the report's date and names the gateway of the report's country.
/// Returns that country.
pub fn verify(report: &Report, roots: &[CertificateDer<'_>]) -> Result<Country, ReportError> {
    let certificate = unhex(&report.signature.certificate)?;
    let seal = Seal {
        certificate_sha256: seal::certificate_id(&certificate),
        leaf_index: 0,
        leaf_count: 1,
        proof: Vec::new(),
        signature: unhex(&report.signature.signature)?,
    };
    Verifier::new(STATISTICS, &certificate)?.verify(&signed_bytes(&report.body)?, Some(&seal))?;
    let at: jiff::Timestamp =
        report.body.generated_at.parse().map_err(|_| {
            ReportError::NotAReport("generated_at is not an RFC 3339 instant".into())
        })?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(at.as_second()).unwrap_or(0),
    ));
    let identity = seal::certified_gateway(&CertificateDer::from(certificate), roots, time)?;
    match identity {
        Identity::Gateway { country } if country.as_str() == report.body.country => Ok(country),
        Identity::Gateway { country } => Err(ReportError::WrongCountry {
            claimed: report.body.country.clone(),
            signer: country,
        }),
        Identity::Agency { .. } => Err(SealError::Certificate("names an agency".into()).into()),
    }
}

/// A table as CSV: labels in the first row and column, totals last, a
/// withheld figure as `<k`.
pub fn csv(table: &Published, k: u64) -> String {
    let figure = |value: &Option<u64>| match value {
        Some(count) => count.to_string(),
        None => format!("<{k}"),
    };
    let mut header = vec![quote("")];
    header.extend(table.columns.iter().map(|column| quote(column)));
    if table.margins {
        header.push("total".into());
    }
    let mut lines = vec![header.join(",")];
    for (index, (label, cells)) in table.rows.iter().zip(&table.cells).enumerate() {
        let mut line = vec![quote(label)];
        line.extend(cells.iter().map(figure));
        if let Some(total) = table.row_totals.get(index) {
            line.push(figure(total));
        }
        lines.push(line.join(","));
    }
    if table.margins {
        let mut line = vec!["total".to_owned()];
        line.extend(table.column_totals.iter().map(figure));
        line.push(figure(&table.total));
        lines.push(line.join(","));
    }
    lines.join("\n") + "\n"
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Writes one CSV per table into `dir`, named `{prefix}{table}.csv`; returns the files.
pub fn write_csvs(
    tables: &[Published],
    k: u64,
    dir: &Path,
    prefix: &str,
) -> Result<Vec<PathBuf>, ReportError> {
    tables
        .iter()
        .map(|table| {
            let file = dir.join(format!("{prefix}{}.csv", table.name));
            std::fs::write(&file, csv(table, k)).map_err(|source| ReportError::Io {
                file: file.clone(),
                source,
            })?;
            Ok(file)
        })
        .collect()
}

/// Writes the report to `out` and its CSVs next to it (`{stem}.{table}.csv`).
pub fn write(report: &Report, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::write(out, to_file_bytes(report)?).map_err(|source| ReportError::Io {
        file: out.to_owned(),
        source,
    })?;
    let dir = out.parent().unwrap_or(Path::new("."));
    let stem = out
        .file_stem()
        .map(|stem| format!("{}.", stem.to_string_lossy()))
        .unwrap_or_default();
    write_csvs(
        &report.body.tables,
        report.body.rule.min_cell.get(),
        dir,
        &stem,
    )
}
