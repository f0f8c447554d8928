//! DynamoDB: the store in-process functions share (`store`), and the way
//! functions run as processes reach DynamoDB: through the
//! emulator (`proxy`), so that `store-error` faults strike their calls as
//! they strike the in-process store's.

pub(crate) mod actions;
pub(crate) mod options;
pub(crate) mod proxy;
pub(crate) mod reach;
pub(crate) mod store;
