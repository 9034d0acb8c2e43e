bpf_tracepoint "sched:sched_switch" {|e| if $e.prev_prio < 120 and $e.prev_state > -1 { emit {prio: $e.prev_prio, state: $e.prev_state} } }
