//! The optional in-process gateway (`--gateway in-process`): handlers post
//! straight into the connection registry instead of calling the
//! `@connections` HTTP API through the AWS SDK. Same outcomes (Gone, payload
//! too large, throttled), none of the HTTP, signing or serialisation. The
//! default stays the SDK path, which is what production runs.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_aws::gateway::{ConnectionInfo, Gateway, GatewayError};
use tokio::sync::mpsc::error::TrySendError;
use tokio_tungstenite::tungstenite::Message;

use crate::connections::{CloseReason, Connections};

pub(crate) struct DirectGateway {
    pub(crate) connections: Arc<Connections>,
    pub(crate) max_message_bytes: usize,
}

#[async_trait]
impl Gateway for DirectGateway {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> Result<(), GatewayError> {
        if payload.len() > self.max_message_bytes {
            return Err(GatewayError::PayloadTooLarge);
        }
        let conn = self
            .connections
            .get(connection_id)
            .ok_or(GatewayError::Gone)?;
        let frame = match std::str::from_utf8(payload) {
            Ok(text) => Message::text(text.to_owned()),
            Err(_) => Message::binary(payload.to_vec()),
        };
        match conn.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(GatewayError::Throttled),
            Err(TrySendError::Closed(_)) => Err(GatewayError::Gone),
        }
    }

    async fn delete(&self, connection_id: &str) -> Result<(), GatewayError> {
        let reason = CloseReason {
            code: 1000,
            reason: String::new(),
        };
        if self.connections.close(connection_id, reason) {
            Ok(())
        } else {
            Err(GatewayError::Gone)
        }
    }

    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, GatewayError> {
        let conn = self
            .connections
            .get(connection_id)
            .ok_or(GatewayError::Gone)?;
        Ok(ConnectionInfo {
            connected_at_ms: Some(conn.connected_at_ms),
            source_ip: Some(conn.source_ip.clone()),
            user_agent: Some(conn.user_agent.clone()),
            last_active_at_ms: Some(conn.last_active_ms()),
        })
    }
}
