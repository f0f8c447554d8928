//! The inspector: the timeline (`crate::timeline`), the open connections
//! and the rooms, served with a page at `/_roomcast/` that shows them,
//! replays invocations and sets faults (docs/inspector.md).

pub(crate) mod api;
