//! DynamoDB as the functions run as processes reach it: through the
//! emulator (`proxy`), so that `store-error` faults strike their calls as
//! they strike the in-process store's.

pub(crate) mod actions;
pub(crate) mod proxy;
pub(crate) mod reach;
