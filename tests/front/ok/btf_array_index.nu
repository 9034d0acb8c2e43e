bpf_raw_tracepoint "sched_process_exec" {|ctx| emit {magic: $ctx.arg2.buf.1, first: $ctx.arg0.comm.0} }
