bpf_raw_tracepoint "sched_process_exec" {|ctx| emit $ctx.arg0.comm.16 }
