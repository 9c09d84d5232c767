//! The user directory: who is an agent. One item per user; `is_agent` only ever turns
//! true, so a single unconditional update records a sighting idempotently.

use super::DynamoStore;
use super::item::{Placeholders, get_bool, item, millis, s};
use crate::aws::error::port_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::PortError;
use domain::actor::Role;
use domain::clock::Timestamp;
use domain::ids::UserId;
use domain::ports::UserDirectory;

fn user_key(user: &UserId) -> super::item::Item {
    item([("user_id", s(user.as_str()))])
}

impl DynamoStore {
    /// Strongly consistent: an agent registered a moment ago can be assigned at once.
    pub(crate) async fn load_is_agent(&self, user: &UserId) -> Result<bool, PortError> {
        let item = self.get_one(&self.users, user_key(user)).await?;
        Ok(item.as_ref().and_then(|i| get_bool(i, "is_agent")).unwrap_or(false))
    }
}

#[async_trait]
impl UserDirectory for DynamoStore {
    async fn record_user(&self, user: &UserId, role: Role, now: Timestamp) -> Result<(), PortError> {
        // An agent sighting sets the flag; any other keeps what is there (false if new).
        let is_agent = if role == Role::Agent { ":yes" } else { "if_not_exists(#is_agent, :no)" };
        let p = Placeholders::names(&["is_agent", "first_seen_at"]).value("now", millis(now));
        // DynamoDB refuses values the expression does not use.
        let p = match role {
            Role::Agent => p.value("yes", AttributeValue::Bool(true)),
            _ => p.value("no", AttributeValue::Bool(false)),
        };
        self.client
            .update_item()
            .table_name(&self.users)
            .set_key(Some(user_key(user)))
            .update_expression(format!(
                "SET #is_agent = {is_agent}, #first_seen_at = if_not_exists(#first_seen_at, :now)"
            ))
            .set_expression_attribute_names(p.name_map())
            .set_expression_attribute_values(p.value_map())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error("dynamodb.update_item(user)", &e))
    }

    async fn is_agent(&self, user: &UserId) -> Result<bool, PortError> {
        self.load_is_agent(user).await
    }
}
