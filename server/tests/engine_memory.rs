//! The memory engine against the conformance suite every engine passes.

mod conformance;

use conformance::Engine;
use hubbub_server::engine::{MemoryBroker, MemoryPresence};
use std::sync::Arc;

async fn memory() -> Engine {
    Engine::start(
        Arc::new(MemoryBroker::new()),
        Arc::new(MemoryPresence::new()),
    )
    .await
}

engine_conformance!(memory);
