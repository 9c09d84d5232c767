//! Support tickets. A ticket is one item in `tickets` (its current state, what the list
//! indexes key on, and `version`) plus one item per history entry in `ticket-entries`,
//! append-only, carrying the comment the entry records. Each command commits the ticket,
//! its new entries and the status document in one transaction guarded by the version read.

use super::item::{Item, Placeholders, get_n, item, json, millis, n, opt_json, s};
use super::requests::StoredRequest;
use super::tables::{
    TICKETS_BY_ASSIGNEE_INDEX, TICKETS_BY_REQUESTER_INDEX, TICKETS_BY_STATUS_INDEX, TICKETS_IN_ORDER_INDEX,
};
use super::transaction::{ATTEMPTS, Step, create, put, retrying};
use super::{DynamoStore, PartitionQuery};
use crate::aws::error::build_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use domain::PortError;
use domain::clock::{self, Timestamp};
use domain::ids::{TicketId, UserId};
use domain::outbox::Decision;
use domain::ports::{Completion, TicketPage, TicketQuery, TicketStore};
use domain::request::CommandContext;
use domain::ticket::{self, Action, Comment, HistoryEntry, Ticket, TicketChange, TicketCursor};
use std::collections::HashMap;
use tokio::task::JoinSet;

/// The `scope` every ticket carries, the one partition of the all-tickets index.
const ALL_TICKETS: &str = "all";

/// How often a change is decided again after losing the version race. Higher than
/// [`ATTEMPTS`]: every racer on one ticket but the winner loses each round, so a burst of
/// `k` changes to one ticket needs up to `k` rounds for its last one.
const CHANGE_ATTEMPTS: usize = 30;

/// A filtered list query reads this many index items per call: the filter drops some, and
/// the cursor is not DynamoDB's, so reading past the page costs nothing but capacity.
const FILTERED_PAGE: i32 = 200;

/// The sort key of every list index: creation time (epoch ms, 15 digits; times before
/// 1970 sort as 1970) then id, so that string order is `(created_at, ticket_id)` order.
fn list_order(created_at: Timestamp, ticket_id: &TicketId) -> String {
    format!("{:015}#{}", clock::to_millis(created_at).max(0), ticket_id)
}

fn ticket_key(ticket_id: &TicketId) -> Item {
    item([("ticket_id", s(ticket_id.as_str()))])
}

/// A ticket's stored state, without its comments and history (those are entries).
fn head_from(item: &Item) -> Result<Ticket, PortError> {
    let head: Ticket =
        opt_json(item, "doc")?.ok_or_else(|| PortError::Corrupt("stored ticket lacks `doc`".to_owned()))?;
    let version: u64 = get_n(item, "version")?;
    if head.version != version {
        return Err(PortError::Corrupt(format!("ticket {} says version {} in its doc", head.ticket_id, head.version)));
    }
    Ok(head)
}

/// The history and comments of a ticket up to `version`, from a strongly consistent query.
/// Entries are written with the ticket in one transaction and never change, so a head at
/// `version` (even one read from a lagging index) has exactly that many.
async fn load_entries(client: &Client, table: &str, mut ticket: Ticket) -> Result<Ticket, PortError> {
    let p = Placeholders::names(&["ticket_id", "seq"])
        .value("id", s(ticket.ticket_id.as_str()))
        .value("version", n(ticket.version));
    let items = PartitionQuery::new(table, "#ticket_id = :id AND #seq <= :version", &p)
        .read(client, "dynamodb.query(ticket entries)")
        .await?;
    for item in items {
        let entry: HistoryEntry =
            opt_json(&item, "entry")?.ok_or_else(|| PortError::Corrupt("ticket entry lacks `entry`".to_owned()))?;
        if let Some(comment) = opt_json::<Comment>(&item, "comment")? {
            ticket.comments.push(comment);
        }
        ticket.history.push(entry);
    }
    if ticket.history.len() as u64 != ticket.version {
        return Err(PortError::Corrupt(format!(
            "ticket {} is at version {} with {} history entries",
            ticket.ticket_id,
            ticket.version,
            ticket.history.len()
        )));
    }
    Ok(ticket)
}

impl DynamoStore {
    async fn load_ticket(&self, ticket_id: &TicketId) -> Result<Option<Ticket>, PortError> {
        let Some(item) = self.get_one(&self.tickets, ticket_key(ticket_id)).await? else {
            return Ok(None);
        };
        load_entries(&self.client, &self.ticket_entries, head_from(&item)?).await.map(Some)
    }

    /// The writes that take a ticket from version `read` (`None`: absent) to `next`: the
    /// ticket item, put on condition that it is still at `read`, and each new history
    /// entry, put on condition that its slot is empty.
    fn ticket_writes(&self, next: &Ticket, read: Option<u64>) -> Result<Vec<TransactWriteItem>, PortError> {
        let head = Ticket { comments: Vec::new(), history: Vec::new(), ..next.clone() };
        let ticket = item(
            [
                ("ticket_id", s(next.ticket_id.as_str())),
                ("doc", json(&head)?),
                ("requester", s(next.requester.as_str())),
                ("status", s(next.status.as_str())),
                ("version", n(next.version)),
                ("created_at", millis(next.created_at)),
                ("scope", s(ALL_TICKETS)),
                ("list_order", s(list_order(next.created_at, &next.ticket_id))),
            ]
            .into_iter()
            // Absent, not null, while unassigned: the assignee index is sparse.
            .chain(next.assignee.as_ref().map(|assignee| ("assignee", s(assignee.as_str())))),
        );
        let (condition, p) = match read {
            None => ("attribute_not_exists(#ticket_id)", Placeholders::names(&["ticket_id"])),
            Some(v) => ("#version = :read", Placeholders::names(&["version"]).value("read", n(v))),
        };
        let mut writes = vec![put(&self.tickets, ticket, Some(condition), p)?];

        let comments: HashMap<String, &Comment> = next.comments.iter().map(|c| (c.comment_id.to_string(), c)).collect();
        let from = usize::try_from(read.unwrap_or(0)).unwrap_or(usize::MAX);
        for (i, entry) in next.history.iter().enumerate().skip(from) {
            let comment =
                entry.to.as_ref().filter(|_| entry.action == Action::Commented).and_then(|id| comments.get(id));
            let record = item(
                [("ticket_id", s(next.ticket_id.as_str())), ("seq", n(i + 1)), ("entry", json(entry)?)]
                    .into_iter()
                    .chain(comment.map(|comment| json(comment).map(|c| ("comment", c))).transpose()?),
            );
            writes.push(create(&self.ticket_entries, record, "seq")?);
        }
        Ok(writes)
    }

    /// A business failure (or a change that changes nothing) is decided on the ticket as
    /// read, so it commits only while the ticket is still at that version.
    fn ticket_unchanged(&self, ticket: &Ticket) -> Result<TransactWriteItem, PortError> {
        let p = Placeholders::names(&["version"]).value("read", n(ticket.version));
        let check = ConditionCheck::builder()
            .table_name(&self.tickets)
            .set_key(Some(ticket_key(&ticket.ticket_id)))
            .condition_expression("#version = :read")
            .set_expression_attribute_names(p.name_map())
            .set_expression_attribute_values(p.value_map())
            .build()
            .map_err(|e| build_error("ticket version check", e))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// The index that narrows `q` most (a requester's tickets, then an assignee's, then
    /// a status's, else all), its key, and a filter for the other conditions.
    fn list_plan(q: &TicketQuery) -> (&'static str, &'static str, String, Vec<(&'static str, String)>) {
        let mut rest: Vec<(&'static str, String)> = Vec::new();
        let mut chosen: Option<(&'static str, &'static str, String)> = None;
        let candidates = [
            (TICKETS_BY_REQUESTER_INDEX, "requester", q.requester.as_ref().map(UserId::to_string)),
            (TICKETS_BY_ASSIGNEE_INDEX, "assignee", q.assignee.as_ref().map(UserId::to_string)),
            (TICKETS_BY_STATUS_INDEX, "status", q.status.map(|st| st.as_str().to_owned())),
        ];
        for (index, attr, value) in candidates {
            let Some(value) = value else { continue };
            if chosen.is_none() {
                chosen = Some((index, attr, value));
            } else {
                rest.push((attr, value));
            }
        }
        let (index, attr, value) = chosen.unwrap_or((TICKETS_IN_ORDER_INDEX, "scope", ALL_TICKETS.to_owned()));
        (index, attr, value, rest)
    }

    async fn list(&self, q: &TicketQuery) -> Result<TicketPage, PortError> {
        let wanted = q.limit.saturating_add(1);
        let (index, hash, value, rest) = Self::list_plan(q);
        let mut names = vec![hash];
        if q.after.is_some() {
            names.push("list_order");
        }
        names.extend(rest.iter().map(|(attr, _)| *attr));
        let mut p = Placeholders::names(&names).value("key", s(value));
        let mut key_condition = format!("#{hash} = :key");
        if let Some(after) = &q.after {
            p = p.value("after", s(list_order(after.created_at, &after.ticket_id)));
            key_condition.push_str(" AND #list_order > :after");
        }
        let mut filter = Vec::new();
        for (i, (attr, v)) in rest.iter().enumerate() {
            p = p.value(&format!("f{i}"), s(v.clone()));
            filter.push(format!("#{attr} = :f{i}"));
        }
        let filter = (!filter.is_empty()).then(|| filter.join(" AND "));

        // One more than asked, to know whether another page follows.
        let mut query = PartitionQuery::new(&self.tickets, &key_condition, &p).index(Some(index)).limit(wanted);
        if filter.is_some() {
            query = query.filter(filter).page(FILTERED_PAGE);
        }
        let mut heads = query
            .read(&self.client, "dynamodb.query(tickets)")
            .await?
            .iter()
            .map(head_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if heads.len() > q.limit {
            heads.truncate(q.limit);
            heads.last().map(TicketCursor::after)
        } else {
            None
        };
        Ok(TicketPage { items: self.with_entries(heads).await?, next })
    }

    /// Each ticket with its comments and history, read at once, in the order given.
    async fn with_entries(&self, heads: Vec<Ticket>) -> Result<Vec<Ticket>, PortError> {
        let mut reads = JoinSet::new();
        let count = heads.len();
        for (i, head) in heads.into_iter().enumerate() {
            let (client, table) = (self.client.clone(), self.ticket_entries.clone());
            reads.spawn(async move { (i, load_entries(&client, &table, head).await) });
        }
        let mut tickets: Vec<Option<Ticket>> = vec![None; count];
        while let Some(joined) = reads.join_next().await {
            let (i, ticket) =
                joined.map_err(|e| PortError::Unavailable(format!("reading ticket entries failed: {e}")))?;
            tickets[i] = Some(ticket?);
        }
        Ok(tickets.into_iter().flatten().collect())
    }

    /// The request, unless it is terminal already (then its first completion).
    async fn pending_request(&self, ctx: &CommandContext) -> Result<Result<StoredRequest, Completion>, PortError> {
        let stored = self.existing_request(&ctx.request_id).await?;
        Ok(match stored.terminal_completion()? {
            Some(done) => Err(done),
            None => Ok(stored),
        })
    }
}

#[async_trait]
impl TicketStore for DynamoStore {
    async fn create_ticket(&self, ctx: &CommandContext, ticket: &Ticket) -> Result<Completion, PortError> {
        retrying("create_ticket", ATTEMPTS, move || async move {
            let stored = match self.pending_request(ctx).await? {
                Ok(stored) => stored,
                Err(done) => return Ok(Step::Done(done)),
            };
            let writes = self.ticket_writes(ticket, None)?;
            match self.commit("create_ticket", &stored, writes, ticket::created(ctx, ticket).into(), ctx.now).await? {
                Ok(done) => Ok(Step::Done(done)),
                Err(_) => Err(PortError::Invalid(format!("ticket {} exists already", ticket.ticket_id))),
            }
        })
        .await
    }

    async fn change_ticket(
        &self,
        ctx: &CommandContext,
        ticket_id: &TicketId,
        change: &TicketChange,
    ) -> Result<Completion, PortError> {
        retrying("change_ticket", CHANGE_ATTEMPTS, move || async move {
            let stored = match self.pending_request(ctx).await? {
                Ok(stored) => stored,
                Err(done) => return Ok(Step::Done(done)),
            };
            let current = self.load_ticket(ticket_id).await?;
            // An agent stays an agent, so the answer read here cannot go stale.
            let assignee_is_agent = match change {
                TicketChange::Assign { agent_id } => self.load_is_agent(agent_id).await?,
                _ => false,
            };
            let decision = ticket::decide(ctx, ticket_id, current.as_ref(), change, assignee_is_agent);
            let guard = match (&decision.write, &current) {
                (Some(next), Some(current)) => self.ticket_writes(next, Some(current.version))?,
                (None, Some(current)) => vec![self.ticket_unchanged(current)?],
                // Not found: nothing can create it under this id but a creation that came
                // later, which this command rightly does not see.
                (_, None) => Vec::new(),
            };
            let decision = Decision::new(decision.outcome, decision.events);
            Ok(match self.commit("change_ticket", &stored, guard, decision, ctx.now).await? {
                Ok(done) => Step::Done(done),
                Err(_) => Step::Again("the ticket changed since it was read"),
            })
        })
        .await
    }

    async fn ticket(&self, ticket_id: &TicketId) -> Result<Option<Ticket>, PortError> {
        self.load_ticket(ticket_id).await
    }

    async fn tickets(&self, query: &TicketQuery) -> Result<TicketPage, PortError> {
        if query.limit == 0 {
            return Ok(TicketPage { items: Vec::new(), next: None });
        }
        self.list(query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ticket::TicketStatus;

    #[test]
    fn list_order_sorts_as_created_at_then_id() {
        let at = |ms| clock::from_millis(ms);
        let keys = [
            list_order(at(-5), &TicketId::from("tkt_z")),
            list_order(at(999), &TicketId::from("tkt_b")),
            list_order(at(1_000), &TicketId::from("tkt_a")),
            list_order(at(1_000), &TicketId::from("tkt_ab")),
            list_order(at(1_795_341_600_123), &TicketId::from("tkt_a")),
        ];
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
    }

    #[test]
    fn the_narrowest_index_is_queried_and_the_rest_filtered() {
        let q = |status, assignee: Option<&str>, requester: Option<&str>| TicketQuery {
            status,
            assignee: assignee.map(UserId::new),
            requester: requester.map(UserId::new),
            limit: 10,
            after: None,
        };
        let (index, attr, _, rest) = DynamoStore::list_plan(&q(None, None, None));
        assert_eq!((index, attr, rest.len()), (TICKETS_IN_ORDER_INDEX, "scope", 0));
        let (index, _, value, rest) = DynamoStore::list_plan(&q(Some(TicketStatus::Open), Some("ann"), None));
        assert_eq!((index, value.as_str()), (TICKETS_BY_ASSIGNEE_INDEX, "ann"));
        assert_eq!(rest, vec![("status", "open".to_owned())]);
        let (index, _, _, rest) = DynamoStore::list_plan(&q(Some(TicketStatus::New), Some("ann"), Some("bo")));
        assert_eq!(index, TICKETS_BY_REQUESTER_INDEX);
        assert_eq!(rest.len(), 2);
    }
}
