//! The user directory: who is an agent. A user becomes one when an admin registers them
//! or when they are seen with an `agent` token, and stays one.

use super::Embedded;
use super::db::sql_error;
use async_trait::async_trait;
use domain::PortError;
use domain::actor::Role;
use domain::clock::{self, Timestamp};
use domain::ids::UserId;
use domain::ports::UserDirectory;
use rusqlite::{Connection, OptionalExtension, params};

pub(super) fn is_agent_in(conn: &Connection, user: &UserId) -> Result<bool, PortError> {
    let agent: Option<bool> = conn
        .prepare_cached("SELECT is_agent FROM users WHERE user_id = ?1")
        .map_err(sql_error)?
        .query_row([user.as_str()], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    Ok(agent.unwrap_or(false))
}

#[async_trait]
impl UserDirectory for Embedded {
    async fn record_user(&self, user: &UserId, role: Role, now: Timestamp) -> Result<(), PortError> {
        let (user, agent) = (user.to_string(), role == Role::Agent);
        self.db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO users (user_id, is_agent, first_seen_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id) DO UPDATE SET is_agent = MAX(is_agent, excluded.is_agent)",
                )
                .map_err(sql_error)?
                .execute(params![user, agent, clock::to_millis(now)])
                .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn is_agent(&self, user: &UserId) -> Result<bool, PortError> {
        let user = user.clone();
        self.db.read(move |conn| is_agent_in(conn, &user)).await
    }
}
