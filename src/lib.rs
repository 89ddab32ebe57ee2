//! Sluice: the control plane of an A/B-test and gradual-rollout platform.
//!
//! Layers, each depending only on those below it:
//! - [`app`]: the application — builds the server, composes the two HTTP layers;
//! - [`api`]: HTTP only — routes, auth, error mapping;
//! - [`web`]: the dashboard — server-rendered pages over the same control layer
//!   (a sibling of `api`: the two never import each other);
//! - [`http`]: what both HTTP layers share (error statuses, CSV downloads);
//! - [`control`]: the operations a team performs (define, ramp, ingest), each
//!   validated by the domain, persisted through the store and republished to SDKs;
//! - [`report`]: significance reports built from per-variant totals;
//! - [`guard`]: guardrail verdicts (the circuit breakers' judgement);
//! - [`rollout`]: when a staged rollout may advance;
//! - [`domain`]: the experiment and metric model, validation, the lifecycle;
//! - [`store`]: persistence behind the [`store::Store`] trait;
//! - [`stats`]: pure statistics on sufficient statistics, no I/O.
//!
//! Evaluation lives in the `sluice-sdk` crate so that the server and the apps never
//! disagree on an assignment.

pub mod api;
pub mod app;
pub mod control;
pub mod demo;
pub mod domain;
pub mod guard;
pub mod http;
pub mod report;
pub mod rollout;
pub mod stats;
pub mod store;
pub mod web;
