bpf_raw_tracepoint "sys_enter" {|ctx| count --by $ctx.arg1 }
