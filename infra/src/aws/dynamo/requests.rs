//! Idempotency records and status documents. The completion update is shared with the
//! booking store, which puts it in the same transaction as the command's effects.

use super::item::{Item, Placeholders, get_bool, get_millis, get_n, get_s, item, json, millis, n, opt_json, s};
use super::tables::{TTL_ATTRIBUTE, UNQUEUED_INDEX};
use super::transaction::{ATTEMPTS, Cancelled, Step, Transaction, all_old, create, retrying};
use super::{DynamoStore, PartitionQuery, is_condition_failure};
use crate::aws::error::{build_error, port_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use domain::PortError;
use domain::clock::{self, Timestamp};
use domain::command::CommandEnvelope;
use domain::event::CloudEvent;
use domain::idempotency::IdempotencyKey;
use domain::ids::{RequestId, UserId};
use domain::outbox::Decision;
use domain::ports::{Abandoned, Admission, Admitted, Completion, RequestStore, StoredResponse, Stranded};
use domain::request::{Outcome, RequestRecord, RequestStatus, StatusDoc};
use std::time::Duration;
use tokio::task::JoinSet;

/// The value of `sweep` while a request's command is not known to be queued.
const UNQUEUED: &str = "unqueued";

/// A status document as stored, with what the sweep and the replay of a completion need.
pub(crate) struct StoredRequest {
    pub(crate) record: RequestRecord,
    item: Item,
}

impl StoredRequest {
    fn parse(item: Item) -> Result<Self, PortError> {
        let status = get_s(&item, "status")?;
        let doc = StatusDoc {
            request_id: RequestId::from(get_s(&item, "request_id")?),
            kind: get_s(&item, "kind")?.to_owned(),
            status: RequestStatus::parse(status)
                .ok_or_else(|| PortError::Corrupt(format!("unknown request status {status}")))?,
            result: opt_json(&item, "result")?,
            error: opt_json(&item, "error")?,
            created_at: get_millis(&item, "created_at")?,
            updated_at: get_millis(&item, "updated_at")?,
        };
        let record = RequestRecord { owner: UserId::new(get_s(&item, "owner")?), doc };
        Ok(Self { record, item })
    }

    fn events(&self) -> Result<Vec<CloudEvent>, PortError> {
        Ok(opt_json(&self.item, "events")?.unwrap_or_default())
    }

    fn queued(&self) -> bool {
        get_bool(&self.item, "queued").unwrap_or(true)
    }

    fn command(&self) -> Result<CommandEnvelope, PortError> {
        CommandEnvelope::parse(get_s(&self.item, "command")?)
            .map_err(|e| PortError::Corrupt(format!("stored command is not valid: {e}")))
    }

    /// What the first run committed, when the request is terminal.
    pub(crate) fn terminal_completion(&self) -> Result<Option<Completion>, PortError> {
        if !self.record.doc.status.is_terminal() {
            return Ok(None);
        }
        Ok(Some(Completion { doc: self.record.doc.clone(), events: self.events()?, first: false, acknowledged: false }))
    }
}

fn request_key(request_id: &RequestId) -> Item {
    item([("request_id", s(request_id.as_str()))])
}

fn idempotency_key(owner: &UserId, k: &IdempotencyKey) -> Item {
    item([("owner", s(owner.as_str())), ("idempotency_key", s(k.as_str()))])
}

/// DynamoDB's TTL counts seconds since the epoch; the item may go once it is expired.
fn ttl_seconds(t: Timestamp) -> AttributeValue {
    n(t.unix_timestamp().max(0) + 1)
}

impl DynamoStore {
    pub(crate) async fn load_request(&self, request_id: &RequestId) -> Result<Option<StoredRequest>, PortError> {
        self.get_one(&self.requests, request_key(request_id)).await?.map(StoredRequest::parse).transpose()
    }

    /// The request, which a command being applied must have.
    pub(crate) async fn existing_request(&self, request_id: &RequestId) -> Result<StoredRequest, PortError> {
        self.load_request(request_id)
            .await?
            .ok_or_else(|| PortError::Corrupt(format!("request {request_id} has no status document")))
    }

    /// The update that completes a request, conditional on it not being terminal yet.
    pub(crate) fn completion_update(
        &self,
        request_id: &RequestId,
        outcome: &Outcome,
        events: &[CloudEvent],
        now: Timestamp,
    ) -> Result<TransactWriteItem, PortError> {
        let (status, field, gone, value) = match outcome {
            Outcome::Succeeded(v) => (RequestStatus::Succeeded, "result", "error", json(v)?),
            Outcome::Failed(e) => (RequestStatus::Failed, "error", "result", json(e)?),
            Outcome::DeadLettered(e) => (RequestStatus::DeadLettered, "error", "result", json(e)?),
        };
        let p = Placeholders::names(&["status", "events", "updated_at", "sweep", field, gone])
            .value("status", s(status.as_str()))
            .value("events", json(events)?)
            .value("now", millis(now))
            .value("value", value)
            .value("accepted", s(RequestStatus::Accepted.as_str()))
            .value("processing", s(RequestStatus::Processing.as_str()));
        let update = Update::builder()
            .table_name(&self.requests)
            .set_key(Some(request_key(request_id)))
            .update_expression(format!(
                "SET #status = :status, #events = :events, #updated_at = :now, #{field} = :value REMOVE #{gone}, #sweep"
            ))
            .condition_expression("#status IN (:accepted, :processing)")
            .set_expression_attribute_names(p.name_map())
            .set_expression_attribute_values(p.value_map())
            .return_values_on_condition_check_failure(all_old())
            .build()
            .map_err(|e| build_error("completion update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Commits the decision (and whatever `effects` go with it) unless the request is
    /// terminal, in which case the first completion is returned. `effects` come first in
    /// the transaction, then the request's update, then the decision's outbox entries.
    pub(crate) async fn commit(
        &self,
        op: &'static str,
        stored: &StoredRequest,
        effects: Vec<TransactWriteItem>,
        decision: Decision,
        now: Timestamp,
    ) -> Result<Result<Completion, Cancelled>, PortError> {
        let request_id = &stored.record.doc.request_id;
        let mut tx = Transaction::from(effects);
        let request = tx.add(self.completion_update(request_id, &decision.outcome, &decision.events, now)?);
        tx.extend(self.outbox_puts(&decision.entries(), now)?);
        match self.transact(op, tx).await? {
            Ok(()) => {
                self.outbox_committed();
                let doc = stored.record.doc.completed(&decision.outcome, now);
                Ok(Ok(Completion { doc, events: decision.events, first: true, acknowledged: false }))
            }
            Err(cancelled) if cancelled.failed(request) => {
                // Terminal already: another run of the same command got there first.
                let again = match cancelled.old_item(request) {
                    Some(item) => StoredRequest::parse(item.clone())?,
                    None => self.existing_request(request_id).await?,
                };
                match again.terminal_completion()? {
                    Some(done) => Ok(Ok(done)),
                    None => Err(PortError::Contention(format!("request {request_id} changed under {op}"))),
                }
            }
            Err(cancelled) => Ok(Err(cancelled)),
        }
    }

    async fn resolve_claimed(&self, admission: &Admission, old: Option<Item>) -> Result<Option<Admitted>, PortError> {
        let existing = match old {
            Some(item) => Some(item),
            None => self.get_one(&self.keys, idempotency_key(&admission.owner, &admission.key)).await?,
        };
        let Some(existing) = existing else {
            return Ok(None);
        };
        let now = clock::to_millis(admission.doc.created_at);
        if get_n::<i64>(&existing, "expires_at")? <= now {
            return Ok(None);
        }
        if get_s(&existing, "fingerprint")? != admission.fingerprint.as_str() {
            return Ok(Some(Admitted::KeyReused));
        }
        let response = StoredResponse {
            status: get_n(&existing, "response_status")?,
            body: get_s(&existing, "response_body")?.to_owned(),
        };
        let request_id = RequestId::from(get_s(&existing, "request_id")?);
        match self.load_request(&request_id).await? {
            Some(stored) if !stored.queued() => Ok(Some(Admitted::Unqueued {
                response,
                command: stored.command()?,
                claimed_at: stored.record.doc.created_at,
            })),
            _ => Ok(Some(Admitted::Replay(response))),
        }
    }

    async fn set_each(
        &self,
        op: &'static str,
        request_ids: &[RequestId],
        build: impl Fn(&RequestId) -> UpdateCall,
    ) -> Result<(), PortError> {
        let mut calls = JoinSet::new();
        for id in request_ids {
            let call = build(id);
            let client = self.client.clone();
            let table = self.requests.clone();
            calls.spawn(async move {
                let result = client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(request_key(&call.request_id)))
                    .update_expression(call.update)
                    .condition_expression(call.condition)
                    .set_expression_attribute_names(call.placeholders.name_map())
                    .set_expression_attribute_values(call.placeholders.value_map())
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(()),
                    // Not (or no longer) in the state this call changes: nothing to do.
                    Err(err) if is_condition_failure(&err) => Ok(()),
                    Err(err) => Err(port_error(op, &err)),
                }
            });
        }
        let mut first_error = None;
        while let Some(joined) = calls.join_next().await {
            let result = joined.unwrap_or_else(|e| Err(PortError::Unavailable(format!("{op}: task failed: {e}"))));
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// One conditional update of a request, sent with others at once.
struct UpdateCall {
    request_id: RequestId,
    update: String,
    condition: String,
    placeholders: Placeholders,
}

#[async_trait]
impl RequestStore for DynamoStore {
    async fn admit(&self, a: Admission) -> Result<Admitted, PortError> {
        let now = a.doc.created_at;
        let doc = &a.doc;
        let mut tx = Transaction::default();
        let claim = tx.add(
            Put::builder()
                .table_name(&self.keys)
                .set_item(Some(item([
                    ("owner", s(a.owner.as_str())),
                    ("idempotency_key", s(a.key.as_str())),
                    ("fingerprint", s(a.fingerprint.as_str())),
                    ("request_id", s(doc.request_id.as_str())),
                    ("response_status", n(a.response.status)),
                    ("response_body", s(a.response.body.clone())),
                    ("expires_at", millis(a.key_expires_at)),
                    (TTL_ATTRIBUTE, ttl_seconds(a.key_expires_at)),
                ])))
                // Guards: one live claim per (caller, key); an expired key is free again.
                .condition_expression("attribute_not_exists(#owner) OR #expires_at <= :now")
                .set_expression_attribute_names(Placeholders::names(&["owner", "expires_at"]).name_map())
                .set_expression_attribute_values(Placeholders::default().value("now", millis(now)).value_map())
                .return_values_on_condition_check_failure(all_old())
                .build()
                .map(|claim| TransactWriteItem::builder().put(claim).build())
                .map_err(|e| build_error("idempotency claim", e))?,
        );
        tx.add(create(
            &self.requests,
            item([
                ("request_id", s(doc.request_id.as_str())),
                ("owner", s(a.owner.as_str())),
                ("kind", s(doc.kind.clone())),
                ("status", s(doc.status.as_str())),
                ("command", s(a.command.to_json())),
                ("queued", AttributeValue::Bool(false)),
                ("sweep", s(UNQUEUED)),
                ("claimed_at", millis(now)),
                ("created_at", millis(now)),
                ("updated_at", millis(now)),
            ]),
            "request_id",
        )?);
        let (a, tx) = (&a, &tx);
        retrying("admit", ATTEMPTS, move || async move {
            match self.transact("admit", tx.clone()).await? {
                Ok(()) => Ok(Step::Done(Admitted::Claimed)),
                Err(cancelled) if cancelled.failed(claim) => {
                    match self.resolve_claimed(a, cancelled.old_item(claim).cloned()).await? {
                        Some(answer) => Ok(Step::Done(answer)),
                        None => Ok(Step::Again("the idempotency key expired or was abandoned since")),
                    }
                }
                Err(_) => Err(PortError::Invalid(format!("request {} was admitted before", doc.request_id))),
            }
        })
        .await
    }

    async fn mark_queued(&self, request_ids: &[RequestId]) -> Result<(), PortError> {
        self.set_each("dynamodb.update_item(queued)", request_ids, |id| UpdateCall {
            request_id: id.clone(),
            update: "SET #queued = :yes REMOVE #sweep".to_owned(),
            condition: "attribute_exists(#request_id)".to_owned(),
            placeholders: Placeholders::names(&["queued", "sweep", "request_id"])
                .value("yes", AttributeValue::Bool(true)),
        })
        .await
    }

    async fn abandon(
        &self,
        owner: &UserId,
        k: &IdempotencyKey,
        request_id: &RequestId,
        claimed_after: Timestamp,
    ) -> Result<Abandoned, PortError> {
        // One transaction: the document goes only while unqueued and young enough that no
        // sweep has taken it on, and the key only with it.
        let doc = Delete::builder()
            .table_name(&self.requests)
            .set_key(Some(request_key(request_id)))
            .condition_expression("#queued = :no AND #claimed_at > :after")
            .set_expression_attribute_names(Placeholders::names(&["queued", "claimed_at"]).name_map())
            .set_expression_attribute_values(
                Placeholders::default()
                    .value("no", AttributeValue::Bool(false))
                    .value("after", millis(claimed_after))
                    .value_map(),
            )
            .build()
            .map_err(|e| build_error("abandon document", e))?;
        let claim = Delete::builder()
            .table_name(&self.keys)
            .set_key(Some(idempotency_key(owner, k)))
            .condition_expression("#request_id = :request_id")
            .set_expression_attribute_names(Placeholders::names(&["request_id"]).name_map())
            .set_expression_attribute_values(
                Placeholders::default().value("request_id", s(request_id.as_str())).value_map(),
            )
            .return_values_on_condition_check_failure(all_old())
            .build()
            .map_err(|e| build_error("abandon key", e))?;
        let items =
            vec![TransactWriteItem::builder().delete(doc).build(), TransactWriteItem::builder().delete(claim).build()];
        match self.transact("abandon", items.into()).await? {
            Ok(()) => Ok(Abandoned::Freed),
            Err(_) => {
                let stored = self.get_one(&self.keys, idempotency_key(owner, k)).await?;
                match stored {
                    Some(item) if get_s(&item, "request_id")? == request_id.as_str() => {
                        Ok(Abandoned::Kept(StoredResponse {
                            status: get_n(&item, "response_status")?,
                            body: get_s(&item, "response_body")?.to_owned(),
                        }))
                    }
                    _ => Err(PortError::Corrupt(format!("request {request_id} lost its idempotency key"))),
                }
            }
        }
    }

    async fn get(&self, request_id: &RequestId) -> Result<Option<RequestRecord>, PortError> {
        Ok(self.load_request(request_id).await?.map(|stored| stored.record))
    }

    async fn wait_terminal(&self, request_id: &RequestId, wait: Duration) -> Result<Option<RequestRecord>, PortError> {
        // Nothing tells this process of a worker's commit: read again, backing off from
        // 50 ms to half a second so a thousand waiters stay cheap.
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(50);
        loop {
            let record = self.get(request_id).await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match &record {
                Some(r) if !r.doc.status.is_terminal() && !left.is_zero() => {}
                _ => return Ok(record),
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    async fn mark_processing(&self, request_ids: &[RequestId], now: Timestamp) -> Result<(), PortError> {
        self.set_each("dynamodb.update_item(processing)", request_ids, |id| UpdateCall {
            request_id: id.clone(),
            update: "SET #status = :processing, #updated_at = :now".to_owned(),
            condition: "#status = :accepted".to_owned(),
            placeholders: Placeholders::names(&["status", "updated_at"])
                .value("processing", s(RequestStatus::Processing.as_str()))
                .value("accepted", s(RequestStatus::Accepted.as_str()))
                .value("now", millis(now)),
        })
        .await
    }

    async fn complete(
        &self,
        request_id: &RequestId,
        decision: Decision,
        now: Timestamp,
    ) -> Result<Completion, PortError> {
        let stored = self.existing_request(request_id).await?;
        if let Some(done) = stored.terminal_completion()? {
            return Ok(done);
        }
        match self.commit("complete", &stored, Vec::new(), decision, now).await? {
            Ok(done) => Ok(done),
            Err(_) => Err(PortError::Contention(format!("request {request_id} changed while completing"))),
        }
    }

    async fn reopen(&self, request_id: &RequestId, now: Timestamp) -> Result<bool, PortError> {
        let p = Placeholders::names(&["status", "updated_at", "result", "error"])
            .value("accepted", s(RequestStatus::Accepted.as_str()))
            .value("dead", s(RequestStatus::DeadLettered.as_str()))
            .value("now", millis(now));
        let result = self
            .client
            .update_item()
            .table_name(&self.requests)
            .set_key(Some(request_key(request_id)))
            .update_expression("SET #status = :accepted, #updated_at = :now REMOVE #result, #error")
            .condition_expression("#status = :dead")
            .set_expression_attribute_names(p.name_map())
            .set_expression_attribute_values(p.value_map())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(port_error("dynamodb.update_item(reopen)", &err)),
        }
    }

    async fn unqueued(&self, claimed_before: Timestamp, limit: usize) -> Result<Vec<Stranded>, PortError> {
        let p = Placeholders::names(&["sweep", "claimed_at"])
            .value("unqueued", s(UNQUEUED))
            .value("before", millis(claimed_before));
        let items = PartitionQuery::new(&self.requests, "#sweep = :unqueued AND #claimed_at < :before", &p)
            .index(Some(UNQUEUED_INDEX))
            .limit(limit)
            .read(&self.client, "dynamodb.query(unqueued)")
            .await?;
        let mut commands = Vec::with_capacity(items.len());
        for item in items {
            let request_id = RequestId::from(get_s(&item, "request_id")?);
            let stranded = match StoredRequest::parse(item) {
                Ok(stored) => Stranded {
                    kind: stored.record.doc.kind.clone(),
                    command: stored.command().map_err(|e| e.to_string()),
                    request_id,
                },
                Err(e) => Stranded { request_id, kind: String::new(), command: Err(e.to_string()) },
            };
            commands.push(stranded);
        }
        Ok(commands)
    }

    /// Nothing to do: DynamoDB's TTL deletes expired keys (`ttl_at`), and until it does,
    /// [`RequestStore::admit`] treats a key past `expires_at` as free. Scanning the table
    /// from every worker every few seconds would cost more than the keys themselves.
    async fn purge_expired_keys(&self, _now: Timestamp) -> Result<u64, PortError> {
        Ok(0)
    }

    async fn ping(&self) -> Result<(), PortError> {
        // A data-plane read of a key that never exists: cheap, and proves the table answers.
        self.client
            .get_item()
            .table_name(&self.requests)
            .set_key(Some(request_key(&RequestId::from("ping"))))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error("dynamodb.get_item(ping)", &e))
    }
}
