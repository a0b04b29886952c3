//! The Agency API: this country's agencies submit, subscribe, acknowledge and
//! ask where their messages stand.
//!
//! The agency is who its certificate says: the sender of every envelope is
//! filled in from the certificate, never from the request.

use std::{collections::BTreeSet, sync::Arc};

use prost::Message as _;
use retorno_proto::v1::{
    self, AcknowledgeRequest, AcknowledgeResponse, DeliveryState, Envelope, EnvelopeBody,
    InboxItem, Receipt, ReceiptBody, Rejection, StatusRequest, StatusResponse, SubmitRequest,
    SubmitResponse, SubscribeRequest, agency_server::Agency, envelope_body::Payload,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    country::Country,
    envelope,
    identity::{Identity, Role},
    store::{Enqueued, OutboxRecord, Store, StoreError, now_micros},
    tls::caller,
    validate::{self, Invalid},
};

/// Inbox items read from storage at a time while a subscriber catches up.
const SUBSCRIBE_CHUNK: usize = 256;

/// The Agency API of one gateway.
#[derive(Clone)]
pub struct AgencyService {
    /// This gateway's country.
    pub country: Country,
    /// The countries this gateway can send to.
    pub peers: Arc<BTreeSet<Country>>,
    /// Outbox and inbox.
    pub store: Arc<Store>,
    /// Largest accepted message.
    pub max_message_bytes: usize,
    /// Ends open subscriptions when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// The agency behind a request: its country is this gateway's, by admission.
struct Caller {
    role: Role,
    name: String,
    urn: String,
}

fn agency<T>(request: &Request<T>) -> Result<Caller, Status> {
    match caller(request)? {
        identity @ Identity::Agency { role, name, .. } => Ok(Caller {
            role: *role,
            name: name.clone(),
            urn: identity.urn(),
        }),
        other => Err(Status::permission_denied(format!(
            "{other} is not an agency"
        ))),
    }
}

fn invalid_argument(invalid: Invalid) -> Status {
    Status::invalid_argument(invalid.to_string())
}

fn storage(error: StoreError) -> Status {
    tracing::error!(%error, "storage failed");
    Status::unavailable(format!("{error}; nothing was changed, try again"))
}

/// Which role may submit which kind. Issue-level detail grows with the case state machine.
fn may_submit(role: Role, payload: &Payload) -> bool {
    match payload {
        Payload::AdvanceNotice(_) => role == Role::DestinationAuthority,
    }
}

impl AgencyService {
    /// Checks a submit request and builds the envelope body it asks for.
    fn envelope_body(&self, who: &Caller, request: &SubmitRequest) -> Result<EnvelopeBody, Status> {
        let size = request.encoded_len();
        if size > self.max_message_bytes {
            return Err(Status::invalid_argument(format!(
                "message is {size} bytes, over this gateway's limit of {} bytes (limits.max_message_bytes)",
                self.max_message_bytes
            )));
        }
        let id = if request.message_id.is_empty() {
            Uuid::now_v7()
        } else {
            validate::message_id("message_id", &request.message_id).map_err(invalid_argument)?
        };
        validate::case_id(&request.case_id).map_err(invalid_argument)?;
        let recipient = validate::country("recipient_country", &request.recipient_country)
            .map_err(invalid_argument)?;
        if !self.peers.contains(&recipient) {
            let known: Vec<&str> = self.peers.iter().map(Country::as_str).collect();
            return Err(Status::invalid_argument(format!(
                "recipient_country: {recipient} is not a peer of {}'s gateway (peers: {})",
                self.country,
                known.join(", ")
            )));
        }
        let payload =
            validate::submitted_payload(request.payload.as_ref()).map_err(invalid_argument)?;
        if !may_submit(who.role, &payload) {
            return Err(Status::permission_denied(format!(
                "a {} agency may not send {}",
                who.role.as_str(),
                validate::payload_kind(&payload)
            )));
        }
        Ok(EnvelopeBody {
            message_id: id.to_string(),
            case_id: request.case_id.clone(),
            sender: Some(v1::Sender {
                country: self.country.to_string(),
                agency: who.name.clone(),
                role: who.role.to_proto() as i32,
            }),
            recipient_country: recipient.to_string(),
            created_at: Some(envelope::timestamp(now_micros())),
            payload: Some(payload),
        })
    }

    /// Streams inbox items after `after` until the subscriber leaves or, with
    /// `stop_at_end`, until it has caught up.
    async fn stream_inbox(
        self,
        mut after: u64,
        stop_at_end: bool,
        items: mpsc::Sender<Result<InboxItem, Status>>,
    ) {
        let mut watermark = self.store.inbox_watermark();
        let mut shutdown = self.shutdown.clone();
        loop {
            watermark.borrow_and_update();
            let chunk = match self.store.inbox_after(after, SUBSCRIBE_CHUNK) {
                Ok(chunk) => chunk,
                Err(error) => {
                    let _ = items.send(Err(storage(error))).await;
                    return;
                }
            };
            let caught_up = chunk.len() < SUBSCRIBE_CHUNK;
            for (cursor, record) in chunk {
                after = cursor;
                if items.send(to_inbox_item(cursor, &record)).await.is_err() {
                    return;
                }
            }
            if !caught_up {
                continue;
            }
            if stop_at_end {
                return;
            }
            tokio::select! {
                changed = watermark.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
                () = items.closed() => return,
            }
        }
    }
}

fn to_inbox_item(cursor: u64, record: &crate::store::InboxRecord) -> Result<InboxItem, Status> {
    let corrupt =
        |e: prost::DecodeError| Status::internal(format!("inbox item {cursor} is corrupt: {e}"));
    let envelope = Envelope::decode(record.envelope.as_slice()).map_err(corrupt)?;
    let body = EnvelopeBody::decode(envelope.body.as_slice()).map_err(corrupt)?;
    Ok(InboxItem {
        cursor,
        envelope: Some(envelope),
        body: Some(body),
        received_at: Some(envelope::timestamp(record.received_at_micros)),
    })
}

fn decode_optional<M: prost::Message + Default>(bytes: &[u8]) -> Result<Option<M>, Status> {
    if bytes.is_empty() {
        return Ok(None);
    }
    M::decode(bytes)
        .map(Some)
        .map_err(|e| Status::internal(format!("stored record is corrupt: {e}")))
}

#[tonic::async_trait]
impl Agency for AgencyService {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let who = agency(&request)?;
        let body = self.envelope_body(&who, request.get_ref())?;
        let span = tracing::info_span!("submit", message_id = %body.message_id, case_id = %body.case_id, peer = %body.recipient_country);
        async {
        let id = validate::message_id("message_id", &body.message_id).map_err(invalid_argument)?;
        let recipient = validate::country("recipient_country", &body.recipient_country).map_err(invalid_argument)?;
        let sealed = envelope::seal(&body);
        let record = OutboxRecord {
            envelope: sealed.envelope,
            body_sha256: sealed.body_sha256,
            message_id: body.message_id.clone(),
        };
        // A retry must match the first submit, not the body (whose created_at differs).
        let request_sha256 = envelope::digest(&request.get_ref().encode_to_vec());
        let outcome = self
            .store
            .enqueue(recipient, id, request_sha256, record)
            .await
            .map_err(storage)?;
        match outcome {
            Enqueued::New(_) => {
                tracing::info!("accepted");
                Ok(Response::new(SubmitResponse { message_id: body.message_id, duplicate: false }))
            }
            Enqueued::Duplicate => Ok(Response::new(SubmitResponse { message_id: body.message_id, duplicate: true })),
            Enqueued::Conflict => Err(Status::already_exists(format!(
                "message_id {} was accepted before with different content; leave message_id empty or use a new UUIDv7",
                body.message_id
            ))),
        }
        }
        .instrument(span)
        .await
    }

    type SubscribeStream = ReceiverStream<Result<InboxItem, Status>>;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let who = agency(&request)?;
        let after = match request.get_ref().after_cursor {
            Some(cursor) => cursor,
            None => self.store.acknowledged(&who.urn).map_err(storage)?,
        };
        let (sender, receiver) = mpsc::channel(SUBSCRIBE_CHUNK);
        tokio::spawn(
            self.clone()
                .stream_inbox(after, request.get_ref().stop_at_end, sender),
        );
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn acknowledge(
        &self,
        request: Request<AcknowledgeRequest>,
    ) -> Result<Response<AcknowledgeResponse>, Status> {
        let who = agency(&request)?;
        let cursor = request.get_ref().cursor;
        let head = self.store.inbox_head();
        if cursor > head {
            return Err(Status::invalid_argument(format!(
                "cursor: {cursor} is beyond the last inbox item ({head})"
            )));
        }
        let cursor = self
            .store
            .acknowledge(&who.urn, cursor)
            .await
            .map_err(storage)?;
        Ok(Response::new(AcknowledgeResponse { cursor }))
    }

    async fn get_status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        agency(&request)?;
        let text = &request.get_ref().message_id;
        let id = Uuid::try_parse(text)
            .map_err(|_| Status::invalid_argument(format!("message_id: {text:?} is not a UUID")))?;
        let record = self
            .store
            .sent_status(id)
            .map_err(storage)?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "{}'s gateway has accepted no message {id}",
                    self.country
                ))
            })?;
        let receipt: Option<Receipt> = decode_optional(&record.receipt)?;
        let receipt_body = match &receipt {
            Some(receipt) => decode_optional::<ReceiptBody>(&receipt.body)?,
            None => None,
        };
        Ok(Response::new(StatusResponse {
            message_id: id.to_string(),
            state: DeliveryState::try_from(record.state).unwrap_or(DeliveryState::Unspecified)
                as i32,
            recipient_country: record.recipient,
            accepted_at: Some(envelope::timestamp(record.accepted_at_micros)),
            receipt,
            receipt_body,
            rejection: decode_optional::<Rejection>(&record.rejection)?,
        }))
    }
}
