//! A typed client for the Operator API of one's own gateway (`retorno-gateway ops`).

use std::sync::Arc;

use retorno_proto::v1::{
    GatewayStatus, GatewayStatusRequest, ListMessagesRequest, ListMessagesResponse, MessageHistory,
    RekeyRequest, RekeyResponse, RequeueRequest, RequeueResponse, SetDrainingRequest,
    ShowMessageRequest, operator_client::OperatorClient,
};
use tonic::transport::Channel;

use crate::{error::ClientError, profile::Profile, tls};

/// A connection to one's own gateway's Operator API, with an operator's profile.
#[derive(Clone)]
pub struct Operations {
    inner: OperatorClient<Channel>,
}

impl Operations {
    /// Connects with the operator certificate and trust named in `profile`.
    pub async fn connect(profile: &Profile) -> Result<Operations, ClientError> {
        let own = tls::KeyedChain::load(&profile.cert, &profile.key)?;
        let roots = tls::load_roots(&profile.ca)?;
        let config = tls::client_config(&own, roots)?;
        let channel = tls::connect(
            &profile.gateway,
            profile.server_name(),
            Arc::clone(&config),
            None,
        )
        .await?;
        Ok(Operations {
            inner: OperatorClient::new(channel),
        })
    }

    /// Per peer, certificates, store, drain state and findings.
    pub async fn status(&mut self) -> Result<GatewayStatus, ClientError> {
        Ok(self
            .inner
            .get_gateway_status(GatewayStatusRequest {})
            .await?
            .into_inner())
    }

    /// One page of the message log, newest first.
    pub async fn messages(
        &mut self,
        request: ListMessagesRequest,
    ) -> Result<ListMessagesResponse, ClientError> {
        Ok(self.inner.list_messages(request).await?.into_inner())
    }

    /// One message's whole history.
    pub async fn show(&mut self, message_id: &str) -> Result<MessageHistory, ClientError> {
        let request = ShowMessageRequest {
            message_id: message_id.to_owned(),
        };
        Ok(self.inner.show_message(request).await?.into_inner())
    }

    /// Sends again messages the peer rejected; one outcome per id.
    pub async fn requeue(
        &mut self,
        message_ids: Vec<String>,
    ) -> Result<RequeueResponse, ClientError> {
        Ok(self
            .inner
            .requeue(RequeueRequest { message_ids })
            .await?
            .into_inner())
    }

    /// Drains the gateway (`true`) or resumes it; returns the state now.
    pub async fn set_draining(&mut self, draining: bool) -> Result<bool, ClientError> {
        Ok(self
            .inner
            .set_draining(SetDrainingRequest { draining })
            .await?
            .into_inner()
            .draining)
    }

    /// Seals every kept envelope again under the newest at-rest key (with
    /// `dry_run`, only counts them per key).
    pub async fn rekey(&mut self, dry_run: bool) -> Result<RekeyResponse, ClientError> {
        Ok(self
            .inner
            .rekey(RekeyRequest { dry_run })
            .await?
            .into_inner())
    }
}
