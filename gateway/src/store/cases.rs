//! What the store keeps beside the messages: the case records of
//! [`crate::case`] (read here, written inside the message transactions),
//! the peers' published reception policies, and the certificates that
//! sealed envelopes or receipts kept here.

use super::{Store, StoreError, decode};
use crate::{case, country::Country, kv};

/// Cases, policies and certificates.
impl Store {
    /// Runs a read-only case transaction (so that a case is read whole).
    pub fn read_case(&self, id: &str) -> Result<Option<retorno_proto::v1::CaseView>, StoreError> {
        kv::transaction(&[&self.cases], |cases| case::load(&cases[0], id))
    }

    /// A case as its readers see it: each timeline entry of a message this
    /// gateway sent shows where its delivery stands, read from the message's
    /// `sent` record ([`case::show_delivery`]). The case record itself is not
    /// rewritten when a receipt arrives; the `sent` record is.
    pub fn case_as_shown(
        &self,
        id: &str,
    ) -> Result<Option<retorno_proto::v1::CaseView>, StoreError> {
        let Some(mut case) = self.read_case(id)? else {
            return Ok(None);
        };
        for entry in case.timeline.iter_mut().filter(|e| case::is_sent_here(e)) {
            let Ok(message_id) = uuid::Uuid::parse_str(&entry.message_id) else {
                continue;
            };
            if let Some(sent) = self.sent_status(message_id)? {
                case::show_delivery(entry, &sent);
            }
        }
        Ok(Some(case))
    }

    /// Every case, in case-id order, read as the iterator goes. The timeline
    /// entries of messages sent here show them as stored (queued); readers
    /// of a timeline use [`Store::case_as_shown`].
    pub fn cases(
        &self,
    ) -> impl Iterator<Item = Result<retorno_proto::v1::CaseView, StoreError>> + '_ {
        self.cases
            .scan_prefix(case::CASE_PREFIX)
            .map(|item| decode("cases", &item?.1))
    }

    /// Keeps a peer's published reception policy, so that it survives a restart.
    pub fn save_policy(
        &self,
        peer: Country,
        policy: &retorno_proto::v1::ReceptionPolicy,
    ) -> Result<(), StoreError> {
        self.policies
            .insert(peer.as_bytes(), prost::Message::encode_to_vec(policy))?;
        Ok(())
    }

    /// Every peer policy kept.
    pub fn policies(
        &self,
    ) -> Result<std::collections::BTreeMap<Country, retorno_proto::v1::ReceptionPolicy>, StoreError>
    {
        let mut policies = std::collections::BTreeMap::new();
        for item in self.policies.iter() {
            let (key, value) = item?;
            let Ok(bytes) = <[u8; 2]>::try_from(key.as_ref()) else {
                continue;
            };
            let Ok(country) = Country::from_bytes(bytes) else {
                continue;
            };
            policies.insert(country, decode("policies", &value)?);
        }
        Ok(policies)
    }

    /// Keeps a signer's certificate by its SHA-256, for evidence; idempotent.
    pub fn save_certificate(&self, certificate: &[u8]) -> Result<(), StoreError> {
        let id = crate::seal::certificate_id(certificate);
        if self.certificates.get(&id)?.is_none() {
            self.certificates.insert(id, certificate)?;
        }
        Ok(())
    }

    /// A kept certificate by its SHA-256.
    pub fn certificate(&self, sha256: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.certificates.get(sha256)?.map(|bytes| bytes.to_vec()))
    }
}
