pub mod protocol;
pub mod broker;
pub mod net;
pub mod config;
