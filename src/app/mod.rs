//! The application: commands built from the probe library (`run`, `list`, `info`), their
//! output, and the Nushell pipelines that consume probe records. Only this module spawns
//! threads and tasks.

pub mod aggregates;
pub mod list;
pub mod output;
pub mod pipeline;
pub mod privileges;
pub mod run;
pub mod session;
pub mod values;
pub mod workbench;
