//! The optional in-process gateway (`--gateway in-process`): handlers post
//! straight into the connection registry instead of calling the
//! `@connections` HTTP API through the AWS SDK. Same outcomes (Gone, payload
//! too large, throttled), none of the HTTP, signing or serialisation. The
//! default stays the SDK path, which is what production runs.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_core::gateway::{ConnectionInfo, Gateway, GatewayError};

use crate::apigateway::connections::{CloseReason, Connections, PostError};

pub(crate) struct InProcessGateway {
    pub(crate) connections: Arc<Connections>,
    pub(crate) max_message_bytes: usize,
}

#[async_trait]
impl Gateway for InProcessGateway {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> Result<(), GatewayError> {
        if payload.len() > self.max_message_bytes {
            return Err(GatewayError::PayloadTooLarge);
        }
        self.connections
            .post(connection_id, payload)
            .map_err(|e| match e {
                PostError::Gone => GatewayError::Gone,
                PostError::Throttled => GatewayError::Throttled,
            })
    }

    async fn delete(&self, connection_id: &str) -> Result<(), GatewayError> {
        if self.connections.close(connection_id, CloseReason::normal()) {
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
            connected_at_ms: Some(conn.peer.connected_at_ms),
            source_ip: Some(conn.peer.source_ip.clone()),
            user_agent: Some(conn.peer.user_agent.clone()),
            last_active_at_ms: Some(conn.last_active_ms()),
        })
    }
}
