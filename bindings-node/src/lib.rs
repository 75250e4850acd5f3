//! Placeholder until this binding is written.
