//! AutoSub's service half on top of the store ([`autosub_store`]) and the core ([`autosub_core`]): workers that
//! take tasks from the queue and run them with [`autosub_core::job::run`] ([`worker`]), the per-task storage and
//! its janitor ([`storage`]), database backups ([`backup`]), tiers applied to jobs ([`policy`]), the configuration of every service command
//! ([`config`]) and the HTTP server with health and metrics ([`http`]).
//!
//! Architecture invariant: this crate never talks to Telegram or to a payment provider; the bot and billing crates
//! write tasks and read their state through the store.

pub mod admin;
pub mod api;
pub mod backup;
pub mod config;
pub mod http;
pub mod links;
pub mod policy;
pub mod storage;
pub mod worker;

pub use config::{Config, ConfigError};
