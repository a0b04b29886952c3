//! A typed client for an agency's own gateway.

use std::sync::Arc;

use retorno_proto::v1::{
    AcknowledgeRequest, CaseState, CaseView, GetCaseRequest, GetReceptionPolicyRequest, InboxItem,
    ListCasesRequest, PointOfEntry, ReceptionPolicy, StatusRequest, StatusResponse, SubmitRequest,
    SubmitResponse, SubscribeRequest, agency_client::AgencyClient,
};
use tonic::{Streaming, transport::Channel};
use uuid::Uuid;

use crate::{compose::BadInput, error::ClientError, profile::Profile, tls};

/// Encoded messages up to this size are accepted from the gateway (inbox items carry envelopes).
const MAX_DECODE_BYTES: usize = 16 * 1024 * 1024;

/// A PEM file of the profile that cannot be used, named with the profile's
/// field (the same name as the flag) as well as its path.
fn profile_file(error: tls::TlsError, fields: &str, profile: &Profile) -> ClientError {
    match error {
        tls::TlsError::File {
            path,
            reason,
            problem,
            ..
        } => {
            let field = [
                (&profile.cert, "cert"),
                (&profile.key, "key"),
                (&profile.ca, "ca"),
            ]
            .into_iter()
            .find_map(|(file, field)| (*file == path).then_some(field));
            ClientError::Tls(tls::TlsError::File {
                path,
                reason: format!(
                    "{reason} (the profile's `{fields}`, or --{})",
                    fields.replace("` or `", " or --")
                ),
                problem,
                field,
            })
        }
        other => ClientError::Tls(other),
    }
}

/// A connection to one's own gateway's Agency API.
#[derive(Clone)]
pub struct Client {
    inner: AgencyClient<Channel>,
    /// The gateway's address, to name it when a call fails under the connection.
    address: String,
    /// How to reach the gateway again to ask why it closed a connection.
    server_name: String,
    config: Arc<rustls::ClientConfig>,
}

impl Client {
    /// Connects with the certificate and trust named in `profile`.
    pub async fn connect(profile: &Profile) -> Result<Client, ClientError> {
        let own = tls::KeyedChain::load(&profile.cert, &profile.key)
            .map_err(|e| profile_file(e, "cert` or `key", profile))?;
        let roots = tls::load_roots(&profile.ca).map_err(|e| profile_file(e, "ca", profile))?;
        let config = tls::client_config(&own, roots)?;
        let channel = tls::connect(
            &profile.gateway,
            profile.server_name(),
            Arc::clone(&config),
            None,
        )
        .await?;
        let inner = AgencyClient::new(channel)
            .max_decoding_message_size(MAX_DECODE_BYTES)
            .max_encoding_message_size(MAX_DECODE_BYTES);
        Ok(Client {
            inner,
            address: profile.gateway.clone(),
            server_name: profile.server_name().to_owned(),
            config,
        })
    }

    /// Submits a message. If the request has no message id, one is chosen
    /// here so that a retry after a lost answer cannot store it twice.
    pub async fn submit(
        &mut self,
        mut request: SubmitRequest,
    ) -> Result<SubmitResponse, ClientError> {
        if request.message_id.is_empty() {
            request.message_id = Uuid::now_v7().to_string();
        }
        match self.inner.submit(request).await {
            Ok(answer) => Ok(answer.into_inner()),
            Err(status) => Err(self.failed(status).await),
        }
    }

    /// Streams inbox items after `after_cursor` (or after the last
    /// acknowledgement); with `follow`, keeps waiting for new ones.
    pub async fn subscribe(
        &mut self,
        after_cursor: Option<u64>,
        follow: bool,
    ) -> Result<Streaming<InboxItem>, ClientError> {
        let request = SubscribeRequest {
            after_cursor,
            stop_at_end: !follow,
        };
        match self.inner.subscribe(request).await {
            Ok(answer) => Ok(answer.into_inner()),
            Err(status) => Err(self.failed(status).await),
        }
    }

    /// Acknowledges every inbox item up to `cursor`; returns the acknowledged cursor.
    pub async fn acknowledge(&mut self, cursor: u64) -> Result<u64, ClientError> {
        match self.inner.acknowledge(AcknowledgeRequest { cursor }).await {
            Ok(answer) => Ok(answer.into_inner().cursor),
            Err(status) => Err(self.failed(status).await),
        }
    }

    /// Where a message this country sent stands.
    pub async fn status(&mut self, message_id: &str) -> Result<StatusResponse, ClientError> {
        let request = StatusRequest {
            message_id: message_id.to_owned(),
        };
        match self.inner.get_status(request).await {
            Ok(answer) => Ok(answer.into_inner()),
            Err(status) => Err(self.failed(status).await),
        }
    }

    /// A case's state and timeline.
    pub async fn case(&mut self, case_id: &str) -> Result<CaseView, ClientError> {
        let request = GetCaseRequest {
            case_id: case_id.to_owned(),
        };
        match self.inner.get_case(request).await {
            Ok(answer) => Ok(answer.into_inner()),
            Err(status) => Err(self.failed(status).await),
        }
    }

    /// The cases the gateway knows, optionally only those in `state`.
    pub async fn cases(&mut self, state: Option<CaseState>) -> Result<Vec<CaseView>, ClientError> {
        let request = ListCasesRequest {
            state: state.unwrap_or(CaseState::Unspecified) as i32,
        };
        match self.inner.list_cases(request).await {
            Ok(answer) => Ok(answer.into_inner().cases),
            Err(status) => Err(self.failed(status).await),
        }
    }

    /// A country's reception policy as the gateway holds it (its own, or a peer's as published).
    pub async fn reception_policy(
        &mut self,
        country: &str,
    ) -> Result<ReceptionPolicy, ClientError> {
        let request = GetReceptionPolicyRequest {
            country: country.to_owned(),
        };
        match self.inner.get_reception_policy(request).await {
            Ok(answer) => Ok(answer.into_inner()),
            Err(status) => Err(self.failed(status).await),
        }
    }

    /// A point of entry of a case's origin, as the origin publishes it: the
    /// one named, or (for `None`) the point of the case's open proposal.
    pub async fn origin_point(
        &mut self,
        case_id: &str,
        point: Option<&str>,
    ) -> Result<PointOfEntry, ClientError> {
        let case = self.case(case_id).await?;
        let code = match point {
            Some(code) => code.to_owned(),
            None => case
                .open_proposal
                .map(|open| open.point_of_entry)
                .ok_or_else(|| {
                    BadInput::new("--tz", format!("case {case_id} has no open proposal to take a point of entry from: give --tz"))
                })?,
        };
        let policy = self.reception_policy(&case.origin_country).await?;
        policy
            .points
            .into_iter()
            .find(|published| published.code == code)
            .ok_or_else(|| {
                BadInput::new(
                    "--point",
                    format!(
                        "{code} is not a point of entry in {}'s published reception policy",
                        case.origin_country
                    ),
                )
                .into()
            })
    }

    /// The error of a failed call, naming a transport cause when there is
    /// one. A connection closed under the call is most often a certificate
    /// refused with an alert the call did not read: connect once more and
    /// read what the gateway says first, to name the refusal for certain.
    async fn failed(&self, status: tonic::Status) -> ClientError {
        let error = ClientError::of_call(&self.address, status);
        let ClientError::Tls(tls::TlsError::Transport {
            cause: tls::TransportCause::Closed,
            ..
        }) = &error
        else {
            return error;
        };
        let config = Arc::clone(&self.config);
        match tls::refusal(&self.address, &self.server_name, config).await {
            Some(cause) => ClientError::Tls(tls::TlsError::Transport {
                address: self.address.clone(),
                cause,
            }),
            None => error,
        }
    }
}
