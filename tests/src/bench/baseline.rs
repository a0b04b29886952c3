//! The baselines measured in the same run: a plain mutual-TLS gRPC server
//! whose Submit stores nothing and answers at once (served with the gateway's
//! own TLS acceptor, in a process of its own like a gateway), and sled alone.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Result;
use retorno_certs_dev::Layout;
use retorno_gateway::{
    Identity,
    config::{DEFAULT_EXPIRY_WARNING_DAYS, DEFAULT_RELOAD_INTERVAL_MS, TlsPaths},
    tls::{Credentials, accept},
};
use retorno_proto::v1::{
    AcknowledgeRequest, AcknowledgeResponse, InboxItem, StatusRequest, StatusResponse,
    SubmitRequest, SubmitResponse, SubscribeRequest,
    agency_server::{Agency, AgencyServer},
};
use sled::{Transactional as _, transaction::ConflictableTransactionError};
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, transport::Server};

/// An Agency API that answers every submit at once and keeps nothing.
struct Immediate;

#[tonic::async_trait]
impl Agency for Immediate {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        Ok(Response::new(SubmitResponse {
            message_id: request.into_inner().message_id,
            duplicate: false,
            case_id: String::new(),
            case_state: 0,
        }))
    }

    type SubscribeStream = ReceiverStream<Result<InboxItem, Status>>;

    async fn subscribe(
        &self,
        _: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        Err(Status::unimplemented("baseline server"))
    }

    async fn acknowledge(
        &self,
        _: Request<AcknowledgeRequest>,
    ) -> Result<Response<AcknowledgeResponse>, Status> {
        Err(Status::unimplemented("baseline server"))
    }

    async fn get_status(
        &self,
        _: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Err(Status::unimplemented("baseline server"))
    }

    async fn get_case(
        &self,
        _: Request<retorno_proto::v1::GetCaseRequest>,
    ) -> Result<Response<retorno_proto::v1::CaseView>, Status> {
        Err(Status::unimplemented("baseline server"))
    }

    async fn list_cases(
        &self,
        _: Request<retorno_proto::v1::ListCasesRequest>,
    ) -> Result<Response<retorno_proto::v1::ListCasesResponse>, Status> {
        Err(Status::unimplemented("baseline server"))
    }

    async fn get_reception_policy(
        &self,
        _: Request<retorno_proto::v1::GetReceptionPolicyRequest>,
    ) -> Result<Response<retorno_proto::v1::ReceptionPolicy>, Status> {
        Err(Status::unimplemented("baseline server"))
    }

    async fn get_statistics(
        &self,
        _: Request<retorno_proto::v1::StatisticsRequest>,
    ) -> Result<Response<retorno_proto::v1::StatisticsResponse>, Status> {
        Err(Status::unimplemented("baseline server"))
    }
}

/// Runs the baseline server until killed: `country`'s gateway certificate,
/// trusting `country`'s agency CA only, exactly as that gateway's Agency API does.
pub(crate) fn serve(listen: SocketAddr, pki: PathBuf, country: &str) -> Result<()> {
    let layout = Layout::new(pki);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let paths = TlsPaths {
            regional_root: layout.root_ca(),
            gateway_cert: layout.gateway_cert(country),
            gateway_key: layout.gateway_key(country),
            agency_ca: layout.agency_ca(country),
            crls: Vec::new(),
            reload_interval_ms: DEFAULT_RELOAD_INTERVAL_MS,
            expiry_warning_days: DEFAULT_EXPIRY_WARNING_DAYS,
        };
        let config = Credentials::load(country.parse()?, &paths)?.agency_server_config();
        let listener = TcpListener::bind(listen).await?;
        let incoming = accept(
            listener,
            config,
            Arc::new(|identity: &Identity| match identity {
                Identity::Agency { .. } => Ok(()),
                other => Err(format!("{other} is not an agency")),
            }),
            retorno_gateway::connections::ConnectionRules::for_listener(&Default::default()),
            "agency",
        );
        Server::builder()
            .layer(retorno_gateway::connections::TrackCalls)
            .add_service(AgencyServer::new(Immediate))
            .serve_with_incoming(incoming)
            .await?;
        Ok(())
    })
}

/// sled alone, with values of the notice's size.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SledFigures {
    /// One insert and one flush per operation, operations per second.
    pub(crate) flush_each: f64,
    /// 64 inserts, then one flush, operations (inserts) per second.
    pub(crate) flush_per_64: f64,
    /// 64 transactions over two trees (the value, and a small status record
    /// in a second tree), then one flush: what a gateway's group commit of 64
    /// concurrent submits does when each submit is its own transaction.
    pub(crate) tx_each_flush_per_64: f64,
    /// One transaction over two trees holding 64 operations, then one flush.
    pub(crate) tx_per_64: f64,
}

/// How sled-alone operations are grouped.
#[derive(Clone, Copy)]
enum Grouping {
    Inserts {
        per_flush: usize,
    },
    Transactions {
        per_flush: usize,
        per_transaction: usize,
    },
}

/// Inserts values of `value_bytes` into fresh sled databases under `dir`, at
/// most `max_ops` operations and `max_time` per variant.
pub(crate) fn sled_alone(
    dir: &Path,
    value_bytes: usize,
    max_ops: usize,
    max_time: Duration,
) -> Result<SledFigures> {
    // Incompressible bytes, as an encrypted or varied notice would be.
    let value = retorno_tests::incompressible(0x9E37_79B9_7F4A_7C15, value_bytes);
    let status = [7u8; 64];
    let run = |name: &str, grouping: Grouping| -> Result<f64> {
        let db = sled::Config::new()
            .path(dir.join(name))
            .cache_capacity(64 * 1024 * 1024)
            .open()?;
        let (values, statuses) = (db.open_tree("values")?, db.open_tree("statuses")?);
        let start = Instant::now();
        let mut ops = 0usize;
        while ops < max_ops && start.elapsed() < max_time {
            match grouping {
                Grouping::Inserts { per_flush } => {
                    for _ in 0..per_flush {
                        values.insert((ops as u64).to_be_bytes(), value.as_slice())?;
                        ops += 1;
                    }
                }
                Grouping::Transactions {
                    per_flush,
                    per_transaction,
                } => {
                    for _ in 0..per_flush / per_transaction {
                        let first = ops as u64;
                        (&values, &statuses)
                            .transaction(|(values, statuses)| {
                                for key in first..first + per_transaction as u64 {
                                    values.insert(&key.to_be_bytes(), value.as_slice())?;
                                    statuses.insert(&key.to_be_bytes(), &status[..])?;
                                }
                                Ok::<_, ConflictableTransactionError<()>>(())
                            })
                            .map_err(|e| anyhow::anyhow!("transaction failed: {e:?}"))?;
                        ops += per_transaction;
                    }
                }
            }
            db.flush()?;
        }
        Ok(ops as f64 / start.elapsed().as_secs_f64())
    };
    Ok(SledFigures {
        flush_each: run("flush-each", Grouping::Inserts { per_flush: 1 })?,
        flush_per_64: run("flush-per-64", Grouping::Inserts { per_flush: 64 })?,
        tx_each_flush_per_64: run(
            "tx-each",
            Grouping::Transactions {
                per_flush: 64,
                per_transaction: 1,
            },
        )?,
        tx_per_64: run(
            "tx-per-64",
            Grouping::Transactions {
                per_flush: 64,
                per_transaction: 64,
            },
        )?,
    })
}
