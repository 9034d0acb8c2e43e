bpf_tracepoint "syscalls:sys_enter_openat" {|a, b| count }
