//! The optional in-process gateway (`--gateway in-process`): handlers post
//! through the same PostToConnection as the `@connections` HTTP API
//! (`post`: IAM, faults, the size limit, Gone, metrics, timeline), without
//! the HTTP, signing or serialisation around it. The default stays the SDK
//! path, which is what production runs.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_core::gateway::{ConnectionInfo, Gateway, GatewayError};

use crate::apigateway::connections::{CloseReason, Connections};
use crate::apigateway::post::{Call, Payload, PostFailure, PostToConnection};

pub(crate) struct InProcessGateway {
    pub(crate) connections: Arc<Connections>,
    pub(crate) post: Arc<PostToConnection>,
}

#[async_trait]
impl Gateway for InProcessGateway {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> Result<(), GatewayError> {
        self.post
            .post(connection_id, Payload::Bytes(payload), &Call::default())
            .await
            .map_err(|e| match e {
                PostFailure::Gone => GatewayError::Gone,
                PostFailure::TooLarge { .. } => GatewayError::PayloadTooLarge,
                PostFailure::Throttled { .. } => GatewayError::Throttled,
                PostFailure::Denied(why) => GatewayError::Forbidden(why),
                PostFailure::Unreadable => GatewayError::Unavailable("unreadable".into()),
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
