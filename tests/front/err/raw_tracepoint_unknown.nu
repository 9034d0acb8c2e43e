bpf_raw_tracepoint "sys_entr" {|ctx| count }
