bpf_tracepoint "sys_enter_openat" {|e| count }
