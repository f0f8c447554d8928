//! The Store conformance suite against the memory adapter, from the same
//! list the DynamoDB adapter runs (tests/e2e/store_dynamodb.rs).

roomcast_core::store_conformance_tests!(async {
    ::std::sync::Arc::new(roomcast_core::store::memory::MemoryStore::new())
});
