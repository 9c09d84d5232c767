//! Support tickets. A ticket is one row: the columns the list
//! filters use, its version, and the whole aggregate (comments, history) as JSON. Each
//! command runs as one write job: the ticket, the status document and its events commit
//! together or not at all.

use super::Embedded;
use super::db::{json_error, sql_error};
use super::requests::complete_open;
use super::users::is_agent_in;
use async_trait::async_trait;
use domain::PortError;
use domain::clock;
use domain::ids::{TicketId, UserId};
use domain::outbox::Decision;
use domain::ports::{Completion, TicketPage, TicketQuery, TicketStore};
use domain::request::CommandContext;
use domain::ticket::{self, Ticket, TicketChange, TicketCursor};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

fn load_ticket(conn: &Connection, ticket_id: &TicketId) -> Result<Option<Ticket>, PortError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM tickets WHERE ticket_id = ?1")
        .map_err(sql_error)?
        .query_row([ticket_id.as_str()], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    doc.map(|d| serde_json::from_str(&d).map_err(json_error)).transpose()
}

fn insert_ticket(conn: &Connection, t: &Ticket) -> Result<(), PortError> {
    conn.prepare_cached(
        "INSERT INTO tickets (ticket_id, requester, assignee, status, version, created_at, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(sql_error)?
    .execute(params![
        t.ticket_id.as_str(),
        t.requester.as_str(),
        t.assignee.as_ref().map(UserId::as_str),
        t.status.as_str(),
        t.version,
        clock::to_millis(t.created_at),
        serde_json::to_string(t).map_err(json_error)?
    ])
    .map_err(sql_error)?;
    Ok(())
}

/// Writes `t` over the stored ticket only if that is still at `expected` version.
fn update_ticket(conn: &Connection, t: &Ticket, expected: u64) -> Result<(), PortError> {
    let n = conn
        .prepare_cached(
            "UPDATE tickets SET assignee = ?2, status = ?3, version = ?4, doc = ?5
             WHERE ticket_id = ?1 AND version = ?6",
        )
        .map_err(sql_error)?
        .execute(params![
            t.ticket_id.as_str(),
            t.assignee.as_ref().map(UserId::as_str),
            t.status.as_str(),
            t.version,
            serde_json::to_string(t).map_err(json_error)?,
            expected
        ])
        .map_err(sql_error)?;
    if n != 1 {
        // The single writer makes this unreachable; if it happens the job rolls back and
        // the message is retried against the fresh ticket.
        return Err(PortError::Contention(format!("ticket {} changed under version {expected}", t.ticket_id)));
    }
    Ok(())
}

fn list(conn: &Connection, q: &TicketQuery) -> Result<TicketPage, PortError> {
    let mut sql = String::from("SELECT doc FROM tickets WHERE 1 = 1");
    let mut args: Vec<SqlValue> = Vec::new();
    let mut filter = |column: &str, value: Option<&str>, sql: &mut String| {
        if let Some(v) = value {
            args.push(SqlValue::Text(v.to_owned()));
            sql.push_str(&format!(" AND {column} = ?{}", args.len()));
        }
    };
    filter("status", q.status.map(|s| s.as_str()), &mut sql);
    filter("assignee", q.assignee.as_ref().map(UserId::as_str), &mut sql);
    filter("requester", q.requester.as_ref().map(UserId::as_str), &mut sql);
    if let Some(after) = &q.after {
        args.push(SqlValue::Integer(clock::to_millis(after.created_at)));
        args.push(SqlValue::Text(after.ticket_id.to_string()));
        sql.push_str(&format!(" AND (created_at, ticket_id) > (?{}, ?{})", args.len() - 1, args.len()));
    }
    // One more than asked, to know whether another page follows.
    args.push(SqlValue::Integer(q.limit as i64 + 1));
    sql.push_str(&format!(" ORDER BY created_at, ticket_id LIMIT ?{}", args.len()));
    let docs = conn
        .prepare_cached(&sql)
        .map_err(sql_error)?
        .query_map(params_from_iter(args), |r| r.get::<_, String>(0))
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    let mut items =
        docs.iter().map(|d| serde_json::from_str::<Ticket>(d).map_err(json_error)).collect::<Result<Vec<_>, _>>()?;
    let next = if items.len() > q.limit {
        items.truncate(q.limit);
        items.last().map(TicketCursor::after)
    } else {
        None
    };
    Ok(TicketPage { items, next })
}

#[async_trait]
impl TicketStore for Embedded {
    async fn create_ticket(&self, ctx: &CommandContext, ticket: &Ticket) -> Result<Completion, PortError> {
        let (ctx, ticket) = (ctx.clone(), ticket.clone());
        self.write_completion(ctx.request_id.clone(), ctx.delivery.clone(), move |conn, open| {
            insert_ticket(conn, &ticket)?;
            complete_open(conn, open, ticket::created(&ctx, &ticket).into(), ctx.now)
        })
        .await
    }

    async fn change_ticket(
        &self,
        ctx: &CommandContext,
        ticket_id: &TicketId,
        change: &TicketChange,
    ) -> Result<Completion, PortError> {
        let (ctx, ticket_id, change) = (ctx.clone(), ticket_id.clone(), change.clone());
        self.write_completion(ctx.request_id.clone(), ctx.delivery.clone(), move |conn, open| {
            let current = load_ticket(conn, &ticket_id)?;
            let assignee_is_agent = match &change {
                TicketChange::Assign { agent_id } => is_agent_in(conn, agent_id)?,
                _ => false,
            };
            let decision = ticket::decide(&ctx, &ticket_id, current.as_ref(), &change, assignee_is_agent);
            if let (Some(next), Some(current)) = (&decision.write, &current) {
                update_ticket(conn, next, current.version)?;
            }
            complete_open(conn, open, Decision::new(decision.outcome, decision.events), ctx.now)
        })
        .await
    }

    async fn ticket(&self, ticket_id: &TicketId) -> Result<Option<Ticket>, PortError> {
        let id = ticket_id.clone();
        self.db.read(move |conn| load_ticket(conn, &id)).await
    }

    async fn tickets(&self, query: &TicketQuery) -> Result<TicketPage, PortError> {
        let query = query.clone();
        self.db.read(move |conn| list(conn, &query)).await
    }
}
