//! The servers the load generator knows.

pub mod centrifugo;
pub mod django_channels;
pub mod hubbub;
pub mod nchan;
pub mod sockudo;
