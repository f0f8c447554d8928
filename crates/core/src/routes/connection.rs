//! `$connect` and `$disconnect`.

use super::{Closed, Context, RouteError};
use crate::auth::Identity;
use crate::clock::{Clock, Millis};
use crate::config::Config;
use crate::events::{self, Event, Outbox};
use crate::store::{ConnectionRecord, Store};

/// `$connect`: records the connection and who is behind it, unless the
/// user is revoked (`Rejected(Forbidden)`: refuse the upgrade with 403).
/// API Gateway cannot post to a connection during `$connect`, so the
/// client learns its id from the `welcome` that answers its `hello`.
pub async fn connect(
    store: &dyn Store,
    clock: &dyn Clock,
    config: &Config,
    connection_id: &str,
    identity: &Identity,
    events: &Outbox,
) -> Result<(), RouteError> {
    let now = clock.now_ms();
    let expires = now.saturating_add(Context::ms(config.retention.connection));
    store
        .put_connection(&ConnectionRecord::new(
            connection_id,
            identity,
            now,
            expires,
        ))
        .await?;
    // Checked after the write: a revoke that lands between the two finds
    // this connection and closes it; one before it is seen here.
    if let Some(until) = store.revoked_until(&identity.user, now).await? {
        store.remove_connection(connection_id).await?;
        tracing::info!(connection_id, user = %identity.user, until, "connect refused: the user is revoked");
        return Err(RouteError::rejected(
            crate::protocol::ErrorCode::Forbidden,
            format!("this user is revoked until {until} (ms since the epoch)"),
        ));
    }
    tracing::info!(connection_id, user = %identity.user, "connected");
    events.record(|| {
        Event::ConnectionOpened(events::ConnectionOpened {
            connection_id: connection_id.to_owned(),
            user: identity.user.clone(),
            name: identity.name.clone(),
            at: now,
        })
    });
    Ok(())
}

/// `$disconnect`: removes the connection and its memberships, and tells
/// each room where the user has no other device left. Best-effort by
/// nature (API Gateway may not deliver it); TTLs clean up what it misses.
pub async fn disconnect(ctx: &Context<'_>, connection_id: &str) -> Result<(), RouteError> {
    disconnect_closed(ctx, connection_id, Closed::default()).await
}

/// [`disconnect`], knowing how the connection closed (API Gateway's
/// `disconnectStatusCode` and `disconnectReason`), for `Connection Closed`.
pub async fn disconnect_closed(
    ctx: &Context<'_>,
    connection_id: &str,
    closed: Closed,
) -> Result<(), RouteError> {
    let Some(removed) = ctx.store.remove_connection(connection_id).await? else {
        tracing::info!(connection_id, "disconnect of an unknown connection");
        return Ok(());
    };
    let gone = ctx.announce_removal(&removed, closed).await;
    if !gone.is_empty() {
        ctx.reap(gone).await;
    }
    let lifetime: Millis = ctx.now().saturating_sub(removed.connection.connected_at);
    tracing::info!(
        connection_id,
        user = %removed.connection.user,
        rooms = removed.memberships.len(),
        lifetime_ms = lifetime,
        "disconnected"
    );
    Ok(())
}
