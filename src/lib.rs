pub mod broker;
pub mod config;
pub mod net;
pub mod protocol;
