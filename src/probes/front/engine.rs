//! The Nushell engine state every parse starts from: nu's language commands (`if`, `let`),
//! its data commands (`where`, `group-by`, ...) and the probe language's own declarations.
//!
//! Built once per process. Each compile parses into a throwaway `StateWorkingSet` on top of
//! it and never merges back, so the state does not grow with every keystroke.

use std::sync::OnceLock;

use nu_protocol::engine::{EngineState, StateWorkingSet};

use super::commands;

/// The shared engine state.
pub fn engine_state() -> &'static EngineState {
    static STATE: OnceLock<EngineState> = OnceLock::new();
    STATE.get_or_init(build)
}

fn build() -> EngineState {
    let mut state = nu_cmd_lang::create_default_context();
    state = nu_command::add_shell_command_context(state);
    let delta = {
        let mut ws = StateWorkingSet::new(&state);
        for decl in commands::all() {
            ws.add_decl(Box::new(decl));
        }
        ws.render()
    };
    // Merging into a fresh state cannot fail: nothing in it refers to the file system.
    if let Err(e) = state.merge_delta(delta) {
        panic!("registering the probe commands failed: {e}");
    }
    state
}
